"""Chat through the real queue (SQLite and PostgreSQL): a user's Slack direct message
against a loopback stand-in of Slack's Web API (bot token, Block Kit, `ok: false` codes,
429), and team feeds: one post per create to the channel's incoming webhook, whatever its
audience, retried, dead-lettered (with no user) and replayed like any delivery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import RunningServer, make_settings, start_server
from tests.fakes.web import HANG, Recorded, Reply, ScriptedHTTP, http_server
from tidings.delivery.chat.slack import SlackDirectSender
from tidings.domain.delivery import DeliveryMedium
from tidings.domain.model import utcnow
from tidings.queue.batch import BatchContext, Senders
from tidings.queue.dispatch import Dispatcher
from tidings.queue.retry import RetryPolicy
from tidings.store import notifications as notification_store
from tidings.store.queue import Claimed
from tidings.support.tracing import Traces

pytestmark = pytest.mark.both_databases

TOKEN = "xoxb-1-test"
MEMBER = "U024BE7LH"
NOTE = {"type": "deploy", "title": "Deploy finished", "message": "api v42 is live",
        "channel": "ops"}
SLACK_OK = Reply(200, json={"ok": True, "channel": "D0001", "ts": "1700000000.000100"})


def slack_api() -> ScriptedHTTP:
    """chat.postMessage as Slack documents it: refuses a request without the bot token."""

    def verify(request: Recorded) -> Reply | None:
        if request.path != "/api/chat.postMessage":
            return Reply(404, text="unknown_method")
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Reply(200, json={"ok": False, "error": "invalid_auth"})
        return None

    return ScriptedHTTP(default=SLACK_OK, check=verify)


@pytest.fixture
async def slack() -> AsyncIterator[tuple[ScriptedHTTP, str]]:
    script = slack_api()
    async with http_server(script) as origin:
        yield script, origin


@pytest.fixture
async def hook() -> AsyncIterator[tuple[ScriptedHTTP, str]]:
    script = ScriptedHTTP(default=Reply(200, text="ok"))
    async with http_server(script) as origin:
        yield script, f"{origin}/services/T0/B0/secret"


async def serve(database_url: str, traces: Traces | None = None,
                **overrides: Any) -> RunningServer:
    settings = make_settings(database_url, retry_delays_ms=[20, 20, 20],
                             max_retry_attempts=3, allow_private_targets=True, **overrides)
    return await start_server(settings, traces)


async def create(server: RunningServer, expect: int = 201, **fields: Any) -> dict[str, Any]:
    async with server.http("ci", "service") as http:
        answer = await http.post("/api/notifications", json={**NOTE, **fields})
    assert answer.status_code == expect, answer.text
    return dict(answer.json())


async def chat_deliveries(server: RunningServer, until: tuple[str, ...] = ("sent", "dead",
                                                                           "skipped"),
                          count: int = 1) -> list[dict[str, Any]]:
    """The chat deliveries once `count` of them have ended, as an admin sees them."""
    async with server.http("root", "admin") as http:
        for _ in range(500):
            items = (await http.get("/api/admin/deliveries",
                                    params={"medium": "chat", "limit": 100})).json()["items"]
            done = [d for d in items if d["status"] in until]
            if len(done) >= count:
                return done
            await asyncio.sleep(0.02)
    raise AssertionError(f"chat deliveries never ended: {items}")


async def set_member(server: RunningServer, user: str = "alice",
                     member: str | None = MEMBER) -> int:
    async with server.http("accounts", "service") as http:
        answer = await http.put(f"/api/users/{user}/contact", json={"slack_user_id": member})
    return answer.status_code


# -- Slack direct messages ------------------------------------------------------------------


async def test_a_direct_message_reaches_slack_in_block_kit(
        database_url: str, slack: tuple[ScriptedHTTP, str]) -> None:
    script, origin = slack
    server = await serve(database_url, slack_bot_token=TOKEN, slack_endpoint=origin)
    try:
        assert await set_member(server) == 200
        note = await create(server, user_id="alice", media=["chat"],
                            url="https://example.com/deploys/42")
        (delivery,) = await chat_deliveries(server)
        async with server.http("alice") as http:
            mine = (await http.get(f"/api/notifications/{note['id']}")).json()
    finally:
        await server.stop()
    assert delivery["status"] == "sent" and delivery["user_id"] == "alice"
    assert delivery["provider_message_id"] == "D0001/1700000000.000100"
    body = json.loads(script.requests[0].body)
    assert body["channel"] == MEMBER and body["text"] == "Deploy finished: api v42 is live"
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "actions", "context"]
    assert mine["status"] == "delivered"


async def test_slack_refusals_retries_and_a_replayed_dead_letter(
        database_url: str, slack: tuple[ScriptedHTTP, str]) -> None:
    script, origin = slack
    script.replies.extend([
        Reply(429, headers={"Retry-After": "0"}, json={"ok": False, "error": "ratelimited"}),
        Reply(200, json={"ok": False, "error": "channel_not_found"}),
    ])
    server = await serve(database_url, slack_bot_token=TOKEN, slack_endpoint=origin)
    try:
        await set_member(server)
        await create(server, user_id="alice", media=["chat"])
        (dead,) = await chat_deliveries(server, until=("dead",))
        assert dead["attempts"] == 2 and "channel_not_found" in dead["last_error"]
        async with server.http("root", "admin") as http:
            replayed = await http.post(f"/api/admin/deliveries/{dead['id']}/replay")
        assert replayed.status_code == 200
        (sent,) = await chat_deliveries(server, until=("sent",))
    finally:
        await server.stop()
    assert len(script.requests) == 3 and sent["id"] == dead["id"]


async def test_chat_is_skipped_without_a_token_or_a_member_id(
        database_url: str, slack: tuple[ScriptedHTTP, str]) -> None:
    script, origin = slack
    without = await serve(database_url)
    try:
        note = await create(without, user_id="alice", media=["chat"])
        assert note["deliveries"][0]["status"] == "skipped"
        assert note["deliveries"][0]["last_error"] == "no chat provider is configured"
    finally:
        await without.stop()
    server = await serve(database_url, slack_bot_token=TOKEN, slack_endpoint=origin)
    try:
        note = await create(server, user_id="bob", media=["chat"])
        # The first server's chat was skipped at creation: no row, nothing to list.
        (skipped,) = await chat_deliveries(server)
    finally:
        await server.stop()
    assert skipped["notification_id"] == note["id"]
    assert skipped["status"] == "skipped"
    assert skipped["last_error"] == "the user has no Slack member id"
    assert script.requests == []


@pytest.mark.parametrize("member", ["u024", "X024BE7LH", "U024be7lh", "U" + "1" * 40])
async def test_a_member_id_not_in_slacks_form_is_a_422(database_url: str,
                                                        member: str) -> None:
    server = await serve(database_url, workers_in_serve=False)
    try:
        async with server.http("accounts", "service") as http:
            answer = await http.put("/api/users/alice/contact", json={"slack_user_id": member})
            cleared = await http.put("/api/users/alice/contact", json={"slack_user_id": None})
    finally:
        await server.stop()
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "slack_user_id"
    assert cleared.status_code == 200 and cleared.json()["slack_user_id"] is None


# -- team feeds -----------------------------------------------------------------------------


async def put_feed(server: RunningServer, url: str, kind: str = "slack") -> None:
    async with server.http("root", "admin") as http:
        answer = await http.put("/api/admin/channels/ops/feed",
                                json={"kind": kind, "webhook_url": url})
    assert answer.status_code == 200, answer.text


async def test_a_channel_create_posts_once_to_its_feed_whatever_its_audience(
        database_url: str, hook: tuple[ScriptedHTTP, str]) -> None:
    script, url = hook
    server = await serve(database_url)
    try:
        await put_feed(server, url)
        async with server.http("ci", "service") as http:
            await http.put("/api/channels/ops/subscribers", json={"add": ["ann", "ben"]})
        answer = await create(server, expect=202)
        assert answer["count"] == 2  # the feed's copy is nobody's notification
        await create(server, user_id="cid", media=["in_app"])  # addressed, same channel
        posts = await chat_deliveries(server, until=("sent",), count=2)
        async with server.http("ann") as http:
            listed = (await http.get("/api/notifications")).json()["items"]
    finally:
        await server.stop()
    assert len(script.requests) == 2  # one per create, not one per subscriber
    assert all(p["user_id"] is None for p in posts)
    assert [n["user_id"] for n in listed] == ["ann"]
    body = json.loads(script.requests[0].body)
    assert body["blocks"][0]["text"]["text"] == "Deploy finished"


async def test_a_refused_feed_post_is_a_dead_letter_without_a_user_that_replays(
        database_url: str, hook: tuple[ScriptedHTTP, str]) -> None:
    script, url = hook
    script.replies.extend([Reply(503, text="rollup_error"), Reply(404, text="no_service")])
    server = await serve(database_url)
    try:
        await put_feed(server, url)
        await create(server, user_id="ann", media=["in_app"])
        (dead,) = await chat_deliveries(server, until=("dead",))
        assert dead["user_id"] is None and dead["attempts"] == 2
        assert "no_service" in dead["last_error"]
        async with server.http("root", "admin") as http:
            listed = (await http.get("/api/admin/deliveries",
                                     params={"status": "dead", "medium": "chat"})).json()
            assert [d["id"] for d in listed["items"]] == [dead["id"]]
            assert (await http.post(f"/api/admin/deliveries/{dead['id']}/replay")
                    ).status_code == 200
        await chat_deliveries(server, until=("sent",))
    finally:
        await server.stop()
    assert len(script.requests) == 3


async def test_a_removed_feed_posts_nothing_more_and_discord_gets_its_own_format(
        database_url: str, hook: tuple[ScriptedHTTP, str]) -> None:
    script, url = hook
    script.default = Reply(204)
    server = await serve(database_url)
    try:
        await put_feed(server, url, kind="discord")
        await create(server, user_id="ann", media=["in_app"])
        await chat_deliveries(server, until=("sent",))
        async with server.http("root", "admin") as http:
            assert (await http.delete("/api/admin/channels/ops/feed")).status_code == 204
        later = await create(server, user_id="ann", media=["in_app"])
        await asyncio.sleep(0.2)  # the worker would have posted by now
        async with server.http("root", "admin") as http:
            items = (await http.get("/api/admin/deliveries",
                                    params={"medium": "chat"})).json()["items"]
    finally:
        await server.stop()
    assert len(script.requests) == 1
    assert json.loads(script.requests[0].body)["allowed_mentions"] == {"parse": []}
    assert len(items) == 1 and later["deliveries"] == [
        d for d in later["deliveries"] if d["medium"] == "in_app"]


async def test_feed_posts_carry_the_trace(database_url: str,
                                          hook: tuple[ScriptedHTTP, str]) -> None:
    script, url = hook
    exporter = InMemorySpanExporter()
    server = await serve(database_url, Traces.exporting_to(SimpleSpanProcessor(exporter)))
    try:
        await put_feed(server, url)
        trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        async with server.http("ci", "service") as http:
            await http.post("/api/notifications", json={**NOTE, "user_id": "ann"},
                            headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
        await chat_deliveries(server, until=("sent",))
    finally:
        await server.stop()
    assert script.requests[0].headers["traceparent"].startswith(f"00-{trace}-")


async def test_a_held_back_direct_message_digest_goes_to_slack_as_one_message(
        database_url: str, slack: tuple[ScriptedHTTP, str]) -> None:
    """Past the hourly limit a user's direct messages are folded into a digest, like
    push; the digest goes to Slack as one message, never as a push."""
    script, origin = slack
    server = await serve(database_url, workers_in_serve=False)
    try:
        notes = [await create(server, user_id="alice", media=["in_app"], title=title)
                 for title in ("Deploy finished", "Rollback done")]
        async with server.services.db.begin() as conn:
            items = await notification_store.get_many(conn, [n["id"] for n in notes],
                                                      cipher=None)
    finally:
        await server.stop()
    async with httpx.AsyncClient() as http:
        dispatcher = Dispatcher(
            Senders(slack=SlackDirectSender(http, TOKEN, endpoint=origin)),
            RetryPolicy(1, (0.02,)), "https://notify.example.test", utcnow)
        claimed = Claimed(id=1, notification_id=items[-1].id, user_id="alice",
                          medium=DeliveryMedium.CHAT, attempts=1, lease_token="t",
                          webhook_id=None, event=None, payload=None, created_at=utcnow())
        settled = await dispatcher.run_digest(claimed, items,
                                              BatchContext(slack_ids={"alice": MEMBER}))
    assert settled.status == "sent"
    (request,) = script.requests
    body = json.loads(request.body)
    assert body["channel"] == MEMBER
    assert body["blocks"][0]["text"]["text"] == "2 new notifications"
    assert body["text"] == "2 new notifications: Deploy finished, Rollback done"


async def test_team_feeds_are_not_held_back_by_the_hourly_limit(
        database_url: str, hook: tuple[ScriptedHTTP, str]) -> None:
    script, url = hook
    server = await serve(database_url, throttle_per_hour=1)
    try:
        await put_feed(server, url)
        for _ in range(3):
            await create(server, user_id="ann", media=["in_app"])
        await chat_deliveries(server, until=("sent",), count=3)
    finally:
        await server.stop()
    assert len(script.requests) == 3


# (A lone surrogate is tried on the same path by tests/test_outside_text.py; here it would
# reach the captured log, which the test runner's workers cannot send back.)
@pytest.mark.parametrize("code", ["bad\u0000code", "x" * 5000], ids=["nul", "huge"])
async def test_a_hostile_slack_error_code_is_stored_clean_as_a_dead_letter(
        database_url: str, slack: tuple[ScriptedHTTP, str], code: str) -> None:
    """Slack's `error` is text from outside: a NUL or a huge code must
    not fail the settlement (PostgreSQL refuses NUL in text) nor be lost."""
    script, origin = slack
    script.replies.append(Reply(200, json={"ok": False, "error": code}))
    server = await serve(database_url, slack_bot_token=TOKEN, slack_endpoint=origin)
    try:
        await set_member(server)
        await create(server, user_id="alice", media=["chat"])
        (dead,) = await chat_deliveries(server, until=("dead",))
        async with server.http("root", "admin") as http:
            detail = (await http.get(f"/api/admin/deliveries/{dead['id']}")).json()
    finally:
        await server.stop()
    assert dead["attempts"] == 1 and "Slack" in dead["last_error"]
    assert "\x00" not in dead["last_error"] and "\ud800" not in dead["last_error"]
    (attempt,) = detail["history"]
    assert attempt["outcome"] == "permanent" and len(attempt["code"]) <= 64


async def test_a_feed_that_never_answers_is_retried_then_dead(
        database_url: str, hook: tuple[ScriptedHTTP, str]) -> None:
    script, url = hook
    script.replies.extend([HANG, HANG, HANG, HANG])
    server = await serve(database_url, delivery_lease_seconds=3)  # sends time out at 1 s
    try:
        await put_feed(server, url)
        await create(server, user_id="ann", media=["in_app"])
        (dead,) = await chat_deliveries(server, until=("dead",))
    finally:
        await server.stop()
    assert dead["attempts"] == 4 and "timed out" in dead["last_error"]
