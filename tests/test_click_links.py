"""Links in emails (DESIGN section 12): a notification's `url` and actions reach the email
(real, loopback SMTP server) as a link and buttons through `{PUBLIC_URL}/c/{token}`, a
signed redirect that answers 302 to the stored URL only, records `clicked_at` once and
raises `notification.clicked`; a bad token answers 400; TRACK_CLICKS=false links
directly (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import RunningServer, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server
from tidings.services.clicks import click_key, mint_click
from tidings.store.tables import notification_deliveries as deliveries

pytestmark = pytest.mark.both_databases

PUBLIC = "https://notify.example.test"
NOTE = {"type": "order", "title": "Order shipped", "message": "On its way",
        "media": ["email"], "user_id": "alice", "url": "https://shop.example/o/7?a=1&b=2",
        "actions": [{"label": "Track <it>", "url": "https://track.example/7"},
                    {"label": "Help", "url": "http://help.example/"}]}


@pytest.fixture
async def smtp() -> AsyncIterator[ScriptedHandler]:
    handler = ScriptedHandler()
    async with smtp_server(handler) as port:
        handler.port = port  # type: ignore[attr-defined]
        yield handler


async def mailer(database_url: str, smtp: ScriptedHandler, **overrides: Any) -> RunningServer:
    settings = make_settings(
        database_url, smtp_host="127.0.0.1", smtp_port=smtp.port,  # type: ignore[attr-defined]
        smtp_starttls=False, email_from="tidings@example.test", public_url=PUBLIC,
        allow_private_targets=True, **overrides)
    running = await start_server(settings)
    async with running.http("accounts", "service") as http:
        answer = await http.put("/api/users/alice/contact",
                                json={"email": "alice@example.test"})
        assert answer.status_code == 200, answer.text
    return running


async def mailed(server: RunningServer, smtp: ScriptedHandler) -> tuple[dict[str, Any], str,
                                                                      str]:
    async with server.http("shop", "service") as http:
        answer = await http.post("/api/notifications", json=NOTE)
    assert answer.status_code == 201, answer.text
    await asyncio.wait_for(smtp.arrived.wait(), 10)
    (mail,) = smtp.received
    return (answer.json(), mail.message.get_body(("plain",)).get_content(),
            mail.message.get_body(("html",)).get_content())


async def test_links_go_through_the_signed_redirect_which_records_the_first_click(
    database_url: str, smtp: ScriptedHandler
) -> None:
    server = await mailer(database_url, smtp)
    try:
        async with server.http("ops", "admin") as ops:
            hook = await ops.post("/api/admin/webhooks", json={
                "url": "http://127.0.0.1:9/hook", "events": ["notification.clicked"]})
            assert hook.status_code == 201, hook.text
        note, text, html = await mailed(server, smtp)
        links = re.findall(rf"{re.escape(PUBLIC)}/c/[A-Za-z0-9_.-]+", text)
        assert len(links) == 3  # the url, then each action, in order
        assert "Track &lt;it&gt;" in html and all(link in html for link in links)
        assert "shop.example" not in text  # only tracked links in the email
        async with server.http() as anyone:
            first = await anyone.get(links[0].removeprefix(PUBLIC))
            action = await anyone.get(links[1].removeprefix(PUBLIC))
            tampered = await anyone.get(links[2].removeprefix(PUBLIC)[:-2] + "AA")
            garbage = await anyone.get("/c/not-a-token")
        assert (first.status_code, first.headers["location"]) == (302, NOTE["url"])
        assert first.headers["cache-control"] == "no-store"
        assert (action.status_code, action.headers["location"]) == (
            302, "https://track.example/7")
        assert tampered.status_code == 400 and garbage.status_code == 400
        assert "location" not in tampered.headers
        async with server.http("alice") as alice:
            clicked_at = (await alice.get(f"/api/notifications/{note['id']}")).json()[
                "clicked_at"]
        assert clicked_at is not None
        async with server.services.db.begin() as conn:
            events = (await conn.execute(sa.select(deliveries.c.payload).where(
                deliveries.c.event == "notification.clicked"))).scalars().all()
        # The first click only: one event, naming which link and the time recorded.
        assert [e["data"] | {"clicked_at": None} for e in events] == [{
            "notification_id": note["id"], "user_id": "alice", "clicked_at": None,
            "link": 0, "url": NOTE["url"]}]
        assert events[0]["data"]["clicked_at"] == clicked_at
        # A signed token naming a link the notification does not have, or a notification
        # that does not exist: never a redirect.
        key = click_key(server.settings)
        async with server.http() as anyone:
            no_link = await anyone.get(f"/c/{mint_click(key, note['id'], 3)}")
            gone = await anyone.get(
                f"/c/{mint_click(key, '01930000-0000-7000-8000-000000000000', 0)}")
        assert no_link.status_code == 400 and gone.status_code == 404
    finally:
        await server.stop()


async def test_without_click_tracking_links_go_straight_to_the_stored_urls(
    database_url: str, smtp: ScriptedHandler
) -> None:
    server = await mailer(database_url, smtp, track_clicks=False)
    try:
        _, text, html = await mailed(server, smtp)
    finally:
        await server.stop()
    assert "/c/" not in text and "/c/" not in html
    assert f"Open: {NOTE['url']}" in text
    assert "Track <it>: https://track.example/7" in text
    assert 'href="https://shop.example/o/7?a=1&amp;b=2"' in html
    assert 'href="http://help.example/"' in html
