"""Admin HTTP API for webhook registrations, and the store function that turns an event into
one delivery row per subscribed registration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import RunningServer, make_settings, start_server
from tidings.config.settings import Settings
from tidings.domain.webhook import event_id
from tidings.store import webhooks as webhook_store
from tidings.store.tables import notification_deliveries as deliveries

pytestmark = pytest.mark.both_databases


@pytest.fixture
def settings(database_url: str) -> Settings:
    """No delivery workers in these servers: the deliveries stay in the states the tests
    put them in. Email and push are configured (never reached), so their deliveries are
    written `pending` rather than `skipped`."""
    return make_settings(database_url, workers_in_serve=False, smtp_host="127.0.0.1",
                         smtp_port=9, push_service_url="http://127.0.0.1:9/push")

ADMIN = ("ops", "admin")
# A literal public address: checked without a DNS lookup, never contacted.
PUBLIC = "https://93.184.215.14/hooks/tidings"
NOTE = {"type": "order", "title": "Order shipped", "message": "On its way"}


async def register(server: RunningServer, events: list[str], url: str = PUBLIC) -> dict[str, Any]:
    async with server.http(*ADMIN) as http:
        response = await http.post("/api/admin/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_registration_shows_its_secret_once(server: RunningServer) -> None:
    created = await register(server, ["delivery.dead", "notification.read"])
    assert set(created) == {"id", "url", "events", "secret", "created_at"}
    assert created["url"] == PUBLIC
    assert created["events"] == ["delivery.dead", "notification.read"]
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    async with server.http(*ADMIN) as http:
        listed = (await http.get("/api/admin/webhooks")).json()
    assert listed == {"items": [{key: created[key] for key in ("id", "url", "events",
                                                                "created_at")}],
                      "next_cursor": None}


async def test_registrations_page_newest_first(server: RunningServer) -> None:
    made = [(await register(server, ["delivery.sent"]))["id"] for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    async with server.http(*ADMIN) as http:
        for _ in range(10):  # bounded
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            body = (await http.get("/api/admin/webhooks", params=params)).json()
            seen.extend(item["id"] for item in body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        bad = await http.get("/api/admin/webhooks", params={"cursor": "%%%"})
    assert seen == made[::-1]
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"


async def test_deleting_a_registration(server: RunningServer) -> None:
    created = await register(server, ["delivery.sent"])
    async with server.http(*ADMIN) as http:
        assert (await http.delete(f"/api/admin/webhooks/{created['id']}")).status_code == 204
        again = await http.delete(f"/api/admin/webhooks/{created['id']}")
        assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
        assert (await http.delete("/api/admin/webhooks/not-an-id")).status_code == 404
        assert (await http.get("/api/admin/webhooks")).json()["items"] == []


async def test_bad_registrations_answer_422_naming_the_field(server: RunningServer) -> None:
    cases = [
        ({"url": PUBLIC, "events": []}, "events"),
        ({"url": PUBLIC, "events": ["delivery.sent", "delivery.lost"]}, "events.1"),
        ({"url": PUBLIC, "events": ["notification.read", "delivery.sent",
                                    "notification.read"]}, "events.2"),
        ({"url": PUBLIC, "events": "delivery.sent"}, "events"),
        ({"events": ["delivery.sent"]}, "url"),
        ({"url": "", "events": ["delivery.sent"]}, "url"),
        ({"url": "ftp://93.184.215.14/x", "events": ["delivery.sent"]}, "url"),
        ({"url": "https:///nohost", "events": ["delivery.sent"]}, "url"),
        ({"url": "http://127.0.0.1:9/hook", "events": ["delivery.sent"]}, "url"),
        ({"url": "http://[::1]/hook", "events": ["delivery.sent"]}, "url"),
        ({"url": "http://10.1.2.3/hook", "events": ["delivery.sent"]}, "url"),
        ({"url": PUBLIC + "\x00", "events": ["delivery.sent"]}, "url"),
        ({"url": PUBLIC, "events": ["delivery.sent"], "secret": "mine"}, "secret"),
    ]
    async with server.http(*ADMIN) as http:
        for body, field in cases:
            response = await http.post("/api/admin/webhooks", json=body)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["error"]["field"] == field, (body, response.text)
        assert (await http.get("/api/admin/webhooks")).json()["items"] == []


async def test_private_targets_are_allowed_when_configured(database_url: str) -> None:
    running = await start_server(make_settings(database_url, allow_private_targets=True))
    try:
        created = await register(running, ["delivery.sent"], url="http://127.0.0.1:9/hook")
    finally:
        await running.stop()
    assert created["url"] == "http://127.0.0.1:9/hook"


async def notify(server: RunningServer, user: str) -> str:
    async with server.http("orders-svc", "service") as http:
        response = await http.post("/api/notifications",
                                   json={**NOTE, "user_id": user, "media": ["email"]})
    assert response.status_code == 201
    return str(response.json()["id"])


async def webhook_rows(server: RunningServer) -> list[dict[str, Any]]:
    async with server.services.db.begin() as conn:
        rows = await conn.execute(
            sa.select(deliveries).where(deliveries.c.medium == "webhook")
            .order_by(deliveries.c.id))
        return [dict(row._mapping) for row in rows]


async def test_an_event_becomes_one_row_per_subscribed_webhook(server: RunningServer) -> None:
    sent_only = await register(server, ["delivery.sent"])
    both = await register(server, ["notification.read", "delivery.sent"])
    await register(server, ["notification.read"])
    first, second = await notify(server, "alice"), await notify(server, "bob")
    items = [(first, "alice", {"notification_id": first, "medium": "email"}),
             (second, "bob", {"notification_id": second, "medium": "email"})]
    now = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    db = server.services.db
    async with db.begin() as conn:
        written = await webhook_store.enqueue_webhook_events(conn, "delivery.sent", items, now)
        none = await webhook_store.enqueue_webhook_events(conn, "notification.delivered",
                                                          items, now)
        empty = await webhook_store.enqueue_webhook_events(conn, "delivery.sent", [], now)
    assert (written, none, empty) == (4, 0, 0)
    rows = await webhook_rows(server)
    assert sorted((row["notification_id"], row["webhook_id"]) for row in rows) == sorted(
        (note, hook["id"]) for note in (first, second) for hook in (sent_only, both))
    for row in rows:
        assert row["status"] == "pending" and row["attempts"] == 0
        assert row["event"] == "delivery.sent"
        assert row["next_attempt_at"] == now and row["created_at"] == now
        assert row["payload"] == {"type": "delivery.sent",
                                  "data": {"notification_id": row["notification_id"],
                                           "medium": "email"}}
        assert row["user_id"] == ("alice" if row["notification_id"] == first else "bob")
    assert event_id(rows[0]["id"]) == f"msg_{rows[0]['id']}"
    async with db.begin() as conn:
        stored = await webhook_store.get(conn, both["id"])
        assert await webhook_store.get(conn, "00000000-0000-7000-8000-000000000000") is None
    assert stored is not None and stored.secret == both["secret"]
    assert stored.events == ("notification.read", "delivery.sent")


async def test_webhook_events_are_listed_and_leave_notification_status_alone(
    server: RunningServer
) -> None:
    hook = await register(server, ["notification.read"])
    note = await notify(server, "carol")
    async with server.services.db.begin() as conn:
        await webhook_store.enqueue_webhook_events(
            conn, "notification.read", [(note, "carol", {"notification_id": note})],
            datetime.now(UTC))
    async with server.http(*ADMIN) as http:
        listed = (await http.get("/api/admin/deliveries", params={"medium": "webhook"})).json()
    [item] = listed["items"]
    assert (item["webhook_id"], item["event"], item["status"]) == (
        hook["id"], "notification.read", "pending")
    async with server.http("carol") as http:
        shown = (await http.get(f"/api/notifications/{note}")).json()
    assert shown["status"] == "pending"


async def test_deleting_a_webhook_skips_its_queued_events(server: RunningServer) -> None:
    gone = await register(server, ["delivery.dead"])
    kept = await register(server, ["delivery.dead"])
    note = await notify(server, "dave")
    async with server.services.db.begin() as conn:
        await webhook_store.enqueue_webhook_events(
            conn, "delivery.dead", [(note, "dave", {"notification_id": note})],
            datetime.now(UTC))
    async with server.http(*ADMIN) as http:
        assert (await http.delete(f"/api/admin/webhooks/{gone['id']}")).status_code == 204
    by_hook = {row["webhook_id"]: row for row in await webhook_rows(server)}
    assert by_hook[gone["id"]]["status"] == "skipped"
    assert by_hook[gone["id"]]["last_error"] == "the webhook was deleted"
    assert by_hook[kept["id"]]["status"] == "pending"
