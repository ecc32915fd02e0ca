"""A user's Slack direct message through a bot token: `chat.postMessage` with the user's
Slack id as `channel` (Slack opens the conversation with the bot itself) and the
notification in Block Kit.

Slack answers most failures with HTTP 200 and `{"ok": false, "error": <code>}`; the codes
that mean "later" (rate limits, Slack's own trouble) are transient, every other one (a
user or token that is gone, a scope missing, a message refused) is permanent: sending the
same request again cannot succeed. HTTP 429 carries `Retry-After`, which is honoured.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tidings.delivery.chat.layouts import slack_body
from tidings.delivery.chat.message import ChatMessage
from tidings.delivery.http_post import post_json
from tidings.delivery.outcome import Attempt, Outcome

DEFAULT_ENDPOINT = "https://slack.com"
PATH = "/api/chat.postMessage"
# Slack's codes for a failure on its side or a limit reached: worth another try.
TRANSIENT_ERRORS = frozenset({
    "ratelimited", "rate_limited", "message_limit_exceeded", "internal_error",
    "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org",
})


class SlackDirectSender:
    """Posts direct messages on a client owned by the caller (`SLACK_BOT_TOKEN`,
    `SLACK_ENDPOINT` for tests)."""

    def __init__(self, client: httpx.AsyncClient, token: str, *,
                 endpoint: str = DEFAULT_ENDPOINT, timeout_s: float = 10.0) -> None:
        self._client = client
        self._token = token
        self._url = endpoint.rstrip("/") + PATH
        self._timeout = timeout_s

    async def send(self, note: ChatMessage, slack_user_id: str) -> Attempt:
        started = time.monotonic()
        body = {"channel": slack_user_id, **slack_body(note)}
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Authorization": f"Bearer {self._token}",
                   "Content-Type": "application/json; charset=utf-8"}
        answer = await post_json(self._client, self._url, content, headers, self._timeout)
        attempt = answer.attempt
        if attempt.outcome is Outcome.SENT:
            attempt = judge(answer.body, attempt.code)
        return Attempt(attempt.outcome, code=attempt.code, error=attempt.error,
                       provider_id=attempt.provider_id, retry_after_s=attempt.retry_after_s,
                       elapsed_s=time.monotonic() - started)


def judge(body: Any, status: str | None) -> Attempt:
    """A 2xx answer's verdict: Slack's `ok`, and its error code when not."""
    if not isinstance(body, dict):
        return Attempt(Outcome.TRANSIENT, code=status, error="Slack answered without JSON")
    if body.get("ok") is True:
        ts, channel = body.get("ts"), body.get("channel")
        provider_id = f"{channel}/{ts}" if isinstance(ts, str) and isinstance(channel, str) \
            else None
        return Attempt(Outcome.SENT, code=status, provider_id=provider_id)
    error = body.get("error")
    code = error[:64] if isinstance(error, str) and error else "unknown_error"
    outcome = Outcome.TRANSIENT if code in TRANSIENT_ERRORS else Outcome.PERMANENT
    return Attempt(outcome, code=code, error=f"Slack: {code}")
