"""Email delivery end to end: a create with the email medium reaches a real SMTP server on
loopback through the queue; transient failures are retried, permanent ones become dead
letters, and the notification's status follows its deliveries (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Client, RunningServer, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server

pytestmark = pytest.mark.both_databases

NOTE = {"type": "invoice", "title": "Invoice ready", "message": "Your invoice\nis <ready>",
        "media": ["email"]}


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[ScriptedHandler, int]]:
    handler = ScriptedHandler()
    async with smtp_server(handler) as port:
        yield handler, port


@pytest.fixture
async def mailer(database_url: str, smtp: tuple[ScriptedHandler, int]
                 ) -> AsyncIterator[RunningServer]:
    _, port = smtp
    settings = make_settings(
        database_url, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
        email_from="tidings@example.test", public_url="https://notify.example.test",
        retry_delays_ms=[50, 50, 50], max_retry_attempts=2,
    )
    running = await start_server(settings)
    try:
        yield running
    finally:
        await running.stop()


async def add_email(server: RunningServer, user_id: str, email: str) -> None:
    async with server.http("accounts", "service") as http:
        response = await http.put(f"/api/users/{user_id}/contact", json={"email": email})
    assert response.status_code == 200, response.text


async def settled(server: RunningServer, note_id: str, user: str = "alice",
                  until: tuple[str, ...] = ("sent", "dead", "skipped")) -> dict[str, Any]:
    """The notification once its email delivery has ended (polled: the worker settles in
    its own task, and the test has no event to await for it over HTTP)."""
    async with server.http(user) as http:
        for _ in range(250):
            body = (await http.get(f"/api/notifications/{note_id}")).json()
            email = next(d for d in body["deliveries"] if d["medium"] == "email")
            if email["status"] in until:
                return body
            await asyncio.sleep(0.02)
    raise AssertionError(f"the email delivery never ended: {body}")


async def create(server: RunningServer, **fields: Any) -> dict[str, Any]:
    async with server.http("billing", "service") as http:
        response = await http.post("/api/notifications", json={**NOTE, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_an_email_reaches_the_smtp_server_once_and_the_notification_is_delivered(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    await add_email(mailer, "alice", "alice@example.test")
    note = await create(mailer, user_id="alice")
    assert [d["medium"] for d in note["deliveries"]] == ["email"]
    assert note["deliveries"][0]["status"] == "pending"
    await asyncio.wait_for(handler.arrived.wait(), 10)
    body = await settled(mailer, note["id"])
    assert body["status"] == "delivered" and body["delivered_at"] is not None
    assert body["deliveries"][0] | {"updated_at": None} == {
        "medium": "email", "status": "sent", "attempts": 1, "last_error": None,
        "updated_at": None, "digest_id": None, "deferred_until": None, "step": 0}
    (mail,) = handler.received
    assert mail.rcpt_tos == ["alice@example.test"]
    assert mail.message["Subject"] == "Invoice ready"
    assert mail.message["Message-ID"].endswith(f".{note['id']}@notify.example.test>")
    text = mail.message.get_body(("plain",)).get_content()
    html = mail.message.get_body(("html",)).get_content()
    assert "Your invoice\nis <ready>" in text
    assert "is &lt;ready&gt;" in html  # the message is escaped in HTML, not in text
    assert mailer.metric("tidings_deliveries_total", medium="email", outcome="sent") == 1
    # RFC 8058: one click (a POST, as mail clients send it) turns email off for exactly
    # this channel and type; a GET (a mail scanner prefetching) changes nothing.
    link = str(mail.message["List-Unsubscribe"]).strip().strip("<>")
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link.startswith("https://notify.example.test/unsubscribe/")
    path = link.removeprefix("https://notify.example.test")
    async with mailer.http() as anyone:
        assert (await anyone.get(path)).status_code == 200
        async with mailer.http("alice") as alice:
            assert (await alice.get("/api/notifications/preferences")).json()["items"] == []
        clicked = await anyone.post(path, data={"List-Unsubscribe": "One-Click"})
    assert clicked.status_code == 200
    async with mailer.http("alice") as alice:
        prefs = (await alice.get("/api/notifications/preferences")).json()["items"]
    assert prefs == [{"channel": "default", "notification_type": "invoice",
                      "email_enabled": False, "push_enabled": True, "in_app_enabled": True,
                      "sms_enabled": True, "chat_enabled": True}]


async def test_a_transient_failure_is_retried_with_the_same_message_id(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    handler.rcpt.extend(["451 4.7.1 greylisted, try again later"])
    await add_email(mailer, "alice", "alice@example.test")
    note = await create(mailer, user_id="alice")
    body = await settled(mailer, note["id"])
    assert body["deliveries"][0]["status"] == "sent"
    assert body["deliveries"][0]["attempts"] == 2
    assert len(handler.received) == 1
    assert mailer.metric("tidings_deliveries_total", medium="email", outcome="transient") == 1


async def test_a_permanent_failure_is_a_dead_letter_at_once(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    handler.rcpt.extend(["550 5.1.1 no such user"])
    await add_email(mailer, "alice", "nobody@example.test")
    note = await create(mailer, user_id="alice")
    body = await settled(mailer, note["id"])
    email = body["deliveries"][0]
    assert email["status"] == "dead" and email["attempts"] == 1
    assert "550" in email["last_error"]
    assert body["status"] == "failed"
    assert mailer.metric("tidings_dead_letters_total", medium="email") == 1


async def test_retries_end_in_a_dead_letter(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    handler.mail.extend(["421 4.3.2 busy"] * 3)
    await add_email(mailer, "alice", "alice@example.test")
    note = await create(mailer, user_id="alice")
    body = await settled(mailer, note["id"])
    assert body["deliveries"][0]["status"] == "dead"
    assert body["deliveries"][0]["attempts"] == 3  # the first try and MAX_RETRY_ATTEMPTS=2
    assert handler.received == []


async def test_a_user_without_an_address_is_skipped_not_an_error(
    mailer: RunningServer,
) -> None:
    note = await create(mailer, user_id="bob")
    body = await settled(mailer, note["id"], user="bob")
    assert body["deliveries"][0]["status"] == "skipped"
    assert body["deliveries"][0]["last_error"] == "the user has no email address"
    assert body["status"] == "pending"  # skipped alone is neither sent nor failed


async def test_in_app_stays_pending_until_acked_while_email_is_sent(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    alice = Client()
    await alice.sio.connect(mailer.url, auth={"token": mailer.token("alice")},
                            transports=["websocket"])
    await alice.next("connectionStatus")
    await add_email(mailer, "alice", "alice@example.test")
    note = await create(mailer, user_id="alice", media=["in_app", "email"])
    live = await alice.next("notification")
    assert live["id"] == note["id"] and live["status"] == "pending"
    status = await alice.next("notificationStatus")
    assert status == {"id": note["id"], "status": "delivered",
                      "delivered_at": status["delivered_at"], "read_at": None}
    await alice.close()


async def test_after_the_one_click_unsubscribe_a_create_naming_email_sends_none(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    """Contract section 11: the create's `media` only narrows what is considered; the
    recipient's preferences still apply, so a create never overrides an unsubscribe."""
    handler, _ = smtp
    await add_email(mailer, "alice", "alice@example.test")
    await add_email(mailer, "bob", "bob@example.test")
    await create(mailer, user_id="alice")
    await asyncio.wait_for(handler.arrived.wait(), 10)
    (mail,) = handler.received
    path = str(mail.message["List-Unsubscribe"]).strip().strip("<>").removeprefix(
        "https://notify.example.test")
    async with mailer.http() as anyone:
        clicked = await anyone.post(path, data={"List-Unsubscribe": "One-Click"})
    assert clicked.status_code == 200
    assert "You will no longer get emails about <strong>default / invoice" in clicked.text

    again = await create(mailer, user_id="alice")
    assert again["deliveries"] == []  # no email delivery, and none in-app: not asked for
    both = await create(mailer, user_id="alice", media=["email", "in_app"])
    assert [d["medium"] for d in both["deliveries"]] == ["in_app"]
    # Another type of alice's, and bob, still get their emails; alice's unsubscribed ones
    # were never queued, so only these two arrive.
    handler.arrived.clear()
    handler.expected = 3
    other = await create(mailer, user_id="alice", type="receipt", title="Receipt")
    await create(mailer, user_id="bob")
    await asyncio.wait_for(handler.arrived.wait(), 10)
    await settled(mailer, other["id"])
    assert sorted((m.rcpt_tos[0], m.message["Subject"]) for m in handler.received) == [
        ("alice@example.test", "Invoice ready"), ("alice@example.test", "Receipt"),
        ("bob@example.test", "Invoice ready")]
