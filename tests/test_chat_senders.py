"""The chat senders against loopback stand-ins that check each service's documented
request: Slack's chat.postMessage (bot token, Block Kit, `ok: false` codes, 429 with
Retry-After) and the incoming webhooks of Slack, Discord, Microsoft Teams and Mattermost,
each in its own format."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes.web import Recorded, Reply, ScriptedHTTP, http_server
from tidings.delivery.chat.feeds import FeedSender
from tidings.delivery.chat.layouts import DISCORD_TITLE, SLACK_HEADER, cut, feed_body
from tidings.delivery.chat.message import ChatMessage, Feed, FeedKind, Link
from tidings.delivery.chat.slack import SlackDirectSender
from tidings.delivery.outcome import Outcome

TOKEN = "xoxb-test-token"
NOTE = ChatMessage(
    notification_id="n-1", title="Invoice ready", message="Total <b>42 €</b> & more @channel",
    channel="billing", type="invoice", priority="high", url="https://example.com/inv/1",
    actions=(Link("Pay", "https://example.com/pay/1"), Link("Dispute", "https://example.com/d")),
)


def slack_api(check: bool = True) -> ScriptedHTTP:
    """chat.postMessage as Slack documents it: the bot token as a Bearer header, JSON."""

    def verify(request: Recorded) -> Reply | None:
        if request.path != "/api/chat.postMessage" or request.method != "POST":
            return Reply(404, text="not found")
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Reply(200, json={"ok": False, "error": "invalid_auth"})
        if not request.headers.get("Content-Type", "").startswith("application/json"):
            return Reply(200, json={"ok": False, "error": "invalid_form_data"})
        body = json.loads(request.body)
        if not isinstance(body.get("channel"), str) or not body.get("text"):
            return Reply(200, json={"ok": False, "error": "no_text"})
        return None

    return ScriptedHTTP(
        default=Reply(200, json={"ok": True, "channel": "D024BE91L", "ts": "1700000000.000100"}),
        check=verify if check else None,
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


async def test_slack_direct_message_in_block_kit(client: httpx.AsyncClient) -> None:
    script = slack_api()
    async with http_server(script) as base:
        attempt = await SlackDirectSender(client, TOKEN, endpoint=base).send(NOTE, "U0123")
    assert attempt.outcome is Outcome.SENT, attempt
    assert attempt.provider_id == "D024BE91L/1700000000.000100"
    body = json.loads(script.requests[0].body)
    assert body["channel"] == "U0123"
    # Slack's markup characters are escaped: no <!channel> or HTML can be smuggled in.
    assert body["text"] == "Invoice ready: Total &lt;b&gt;42 €&lt;/b&gt; &amp; more @channel"
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds == ["header", "section", "actions", "context"]
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": "Invoice ready",
                                         "emoji": True}
    buttons = body["blocks"][2]["elements"]
    assert [(b["text"]["text"], b["url"]) for b in buttons] == [
        ("Open", "https://example.com/inv/1"), ("Pay", "https://example.com/pay/1"),
        ("Dispute", "https://example.com/d")]
    assert len({b["action_id"] for b in buttons}) == 3  # Slack refuses repeated action ids


@pytest.mark.parametrize(("reply", "outcome", "code"), [
    (Reply(200, json={"ok": False, "error": "channel_not_found"}), Outcome.PERMANENT,
     "channel_not_found"),
    (Reply(200, json={"ok": False, "error": "account_inactive"}), Outcome.PERMANENT,
     "account_inactive"),
    (Reply(200, json={"ok": False, "error": "ratelimited"}), Outcome.TRANSIENT, "ratelimited"),
    (Reply(200, json={"ok": False, "error": "internal_error"}), Outcome.TRANSIENT,
     "internal_error"),
    (Reply(200, json={"ok": False}), Outcome.PERMANENT, "unknown_error"),
    (Reply(200, text="<html>proxy page</html>"), Outcome.TRANSIENT, "200"),
    (Reply(503, text="upstream"), Outcome.TRANSIENT, "503"),
    (Reply(401, json={"ok": False, "error": "not_authed"}), Outcome.PERMANENT, "401"),
])
async def test_slack_answers_map_to_outcomes(client: httpx.AsyncClient, reply: Reply,
                                             outcome: Outcome, code: str) -> None:
    script = ScriptedHTTP(default=reply)
    async with http_server(script) as base:
        attempt = await SlackDirectSender(client, TOKEN, endpoint=base).send(NOTE, "U1")
    assert (attempt.outcome, attempt.code) == (outcome, code)
    assert attempt.error and TOKEN not in attempt.error


async def test_slack_rate_limit_honours_retry_after(client: httpx.AsyncClient) -> None:
    script = ScriptedHTTP(default=Reply(429, headers={"Retry-After": "30"},
                                        json={"ok": False, "error": "ratelimited"}))
    async with http_server(script) as base:
        attempt = await SlackDirectSender(client, TOKEN, endpoint=base).send(NOTE, "U1")
    assert attempt.outcome is Outcome.TRANSIENT
    assert attempt.retry_after_s == 30.0


async def test_slack_unreachable_is_transient(client: httpx.AsyncClient) -> None:
    sender = SlackDirectSender(client, TOKEN, endpoint="http://127.0.0.1:9", timeout_s=2.0)
    attempt = await sender.send(NOTE, "U1")
    assert attempt.outcome is Outcome.TRANSIENT


def _feed_check(kind: FeedKind) -> ScriptedHTTP:
    """Each service's incoming webhook: JSON, and its own success answer."""
    success = {
        FeedKind.SLACK: Reply(200, text="ok"),
        FeedKind.DISCORD: Reply(204),
        FeedKind.TEAMS: Reply(200, text="1"),
        FeedKind.MATTERMOST: Reply(200, text="ok"),
    }[kind]

    def verify(request: Recorded) -> Reply | None:
        if request.headers.get("Content-Type") != "application/json":
            return Reply(400, text="invalid_payload")
        return None

    return ScriptedHTTP(default=success, check=verify)


async def _post(client: httpx.AsyncClient, kind: FeedKind,
                script: ScriptedHTTP) -> tuple[Any, Outcome, str | None]:
    async with http_server(script) as base:
        sender = FeedSender(client, allow_private=True)
        attempt = await sender.send(NOTE, Feed(kind, f"{base}/hooks/T1/B2/secret"))
    body = json.loads(script.requests[0].body) if script.requests else None
    return body, attempt.outcome, attempt.error


async def test_slack_feed_posts_blocks(client: httpx.AsyncClient) -> None:
    body, outcome, _ = await _post(client, FeedKind.SLACK, _feed_check(FeedKind.SLACK))
    assert outcome is Outcome.SENT
    assert "channel" not in body  # an incoming webhook posts to its own channel
    assert body["blocks"][0]["type"] == "header"


async def test_discord_feed_posts_an_embed_that_pings_nobody(
        client: httpx.AsyncClient) -> None:
    body, outcome, _ = await _post(client, FeedKind.DISCORD, _feed_check(FeedKind.DISCORD))
    assert outcome is Outcome.SENT
    assert body["allowed_mentions"] == {"parse": []}
    embed = body["embeds"][0]
    assert (embed["title"], embed["url"]) == ("Invoice ready", "https://example.com/inv/1")
    assert embed["color"] == 0xF29900  # high
    assert [f["name"] for f in embed["fields"]] == ["Pay", "Dispute"]


async def test_teams_feed_posts_an_adaptive_card(client: httpx.AsyncClient) -> None:
    body, outcome, _ = await _post(client, FeedKind.TEAMS, _feed_check(FeedKind.TEAMS))
    assert outcome is Outcome.SENT
    assert body["type"] == "message"
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "Invoice ready"
    assert [a["type"] for a in card["actions"]] == ["Action.OpenUrl"] * 3


async def test_mattermost_feed_keeps_the_text_out_of_mentions(
        client: httpx.AsyncClient) -> None:
    body, outcome, _ = await _post(client, FeedKind.MATTERMOST,
                                   _feed_check(FeedKind.MATTERMOST))
    assert outcome is Outcome.SENT
    assert "text" not in body  # @channel in a post's own text would page the channel
    attachment = body["attachments"][0]
    assert attachment["title_link"] == "https://example.com/inv/1"
    assert "@channel" in attachment["text"]
    assert "[Pay](https://example.com/pay/1)" in attachment["text"]


@pytest.mark.parametrize(("reply", "outcome", "error"), [
    (Reply(410, text="channel_is_archived"), Outcome.PERMANENT, "HTTP 410: channel_is_archived"),
    (Reply(404, text="no_service"), Outcome.PERMANENT, "HTTP 404: no_service"),
    (Reply(400, text="invalid_payload"), Outcome.PERMANENT, "HTTP 400: invalid_payload"),
    (Reply(404, json={"message": "Unknown Webhook", "code": 10015}), Outcome.PERMANENT,
     "HTTP 404: Unknown Webhook"),
    (Reply(429, headers={"Retry-After": "2"}, json={"retry_after": 1.5}), Outcome.TRANSIENT,
     "HTTP 429"),
    (Reply(500, text="rollup_error"), Outcome.TRANSIENT, "HTTP 500: rollup_error"),
    # A long plain-text body is not copied into the record: it might echo what was sent.
    (Reply(400, text="Total <b>42</b> was refused because of reasons"), Outcome.PERMANENT,
     "HTTP 400"),
])
async def test_feed_answers_map_to_outcomes(client: httpx.AsyncClient, reply: Reply,
                                            outcome: Outcome, error: str) -> None:
    _, got, message = await _post(client, FeedKind.SLACK, ScriptedHTTP(default=reply))
    assert (got, message) == (outcome, error)


async def test_feed_to_a_private_address_is_refused_unless_allowed(
        client: httpx.AsyncClient) -> None:
    script = ScriptedHTTP(default=Reply(200, text="ok"))
    async with http_server(script) as base:
        attempt = await FeedSender(client).send(NOTE, Feed(FeedKind.SLACK, f"{base}/hook"))
    assert attempt.outcome is Outcome.PERMANENT
    assert script.requests == []


def test_long_text_is_cut_to_each_services_limits() -> None:
    long = ChatMessage("n", "T" * 500, "m" * 10_000, "c", "t")
    slack = feed_body(FeedKind.SLACK, long)
    header = slack["blocks"][0]["text"]["text"]
    assert len(header) == SLACK_HEADER and header.endswith("\u2026")
    assert len(slack["blocks"][1]["text"]["text"]) == 3000
    discord = feed_body(FeedKind.DISCORD, long)
    assert len(discord["embeds"][0]["title"]) == DISCORD_TITLE
    assert len(discord["content"]) == 2000
    assert cut("short", 10) == "short"


def test_a_message_without_links_has_no_buttons() -> None:
    plain = ChatMessage("n", "Title", "", "c", "t")
    blocks = feed_body(FeedKind.SLACK, plain)["blocks"]
    assert [b["type"] for b in blocks] == ["header", "context"]
    assert "actions" not in feed_body(FeedKind.TEAMS, plain)["attachments"][0]["content"]
    assert "fields" not in feed_body(FeedKind.DISCORD, plain)["embeds"][0]
    assert feed_body(FeedKind.MATTERMOST, plain)["attachments"][0]["text"] == ""
