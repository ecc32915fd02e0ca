"""Media the server has no provider for are skipped at creation without a delivery row
each: the copy keeps them (`unserved`) and every read shows them as those rows would
(SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import RunningServer, make_settings
from tidings.config.settings import Settings
from tidings.store.tables import notification_deliveries, notifications

pytestmark = pytest.mark.both_databases

SKIPPED = {"medium", "status", "attempts", "last_error", "step"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, workers_in_serve=False)  # no provider configured


async def test_one_row_is_written_and_five_deliveries_are_shown(server: RunningServer) -> None:
    async with server.http("shop", "service") as http:
        created = (await http.post("/api/notifications", json={
            "user_id": "ann", "type": "order", "title": "Shipped", "message": "On its way"})).json()
    async with server.services.db.begin() as conn:
        rows = (await conn.execute(
            sa.select(notification_deliveries.c.medium)
            .where(notification_deliveries.c.notification_id == created["id"]))).all()
        kept = (await conn.execute(sa.select(notifications.c.unserved)
                                   .where(notifications.c.id == created["id"]))).scalar_one()
    assert [row.medium for row in rows] == ["in_app"]
    assert kept == "chat,email,push,sms"
    async with server.http("ann") as http:
        read = (await http.get(f"/api/notifications/{created['id']}")).json()
        listed = (await http.get("/api/notifications")).json()["items"][0]
    # What the create answered is what every read shows, the skipped media included.
    shown = [{k: d[k] for k in SKIPPED} for d in read["deliveries"]]
    assert shown == [{k: d[k] for k in SKIPPED} for d in created["deliveries"]]
    assert [{k: d[k] for k in SKIPPED} for d in listed["deliveries"]] == shown
    assert [(d["medium"], d["status"], d["last_error"]) for d in read["deliveries"]] == [
        ("chat", "skipped", "no chat provider is configured"),
        ("email", "skipped", "no email provider is configured"),
        ("in_app", "sent", None),
        ("push", "skipped", "no push provider is configured"),
        ("sms", "skipped", "no sms provider is configured"),
    ]
    assert all(d["updated_at"] == created["created_at"] for d in read["deliveries"]
               if d["status"] == "skipped")


async def test_media_a_preference_turned_off_are_not_shown_at_all(
        server: RunningServer) -> None:
    async with server.http("ann") as http:
        await http.put("/api/notifications/preferences", json={
            "channel": "*", "notification_type": "*", "email_enabled": False})
    async with server.http("shop", "service") as http:
        created = (await http.post("/api/notifications", json={
            "user_id": "ann", "type": "order", "title": "Shipped", "message": "On its way",
            "media": ["email", "push"]})).json()
    assert [d["medium"] for d in created["deliveries"]] == ["push"]
    async with server.http("ann") as http:
        read = (await http.get(f"/api/notifications/{created['id']}")).json()
    assert [(d["medium"], d["status"]) for d in read["deliveries"]] == [("push", "skipped")]
