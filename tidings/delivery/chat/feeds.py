"""Team feeds: one post per notification to a channel's incoming webhook, in the format of
the service the webhook belongs to.

The four services answer like plain HTTP providers (2xx accepted; 408, 429 and 5xx later;
other 4xx never, e.g. a webhook deleted on their side answers 404, an archived Slack
channel 410), with `Retry-After` on their rate limits. Their URLs are an admin's input,
so, like webhooks, each is checked against private addresses before every post unless
`ALLOW_PRIVATE_TARGETS` is set.
"""

from __future__ import annotations

import json
import time

import httpx

from tidings.delivery.chat.layouts import feed_body
from tidings.delivery.chat.message import ChatMessage, Feed
from tidings.delivery.http_post import post_json
from tidings.delivery.outcome import Attempt, Outcome
from tidings.delivery.targets import UnresolvableTarget, check_target_url
from tidings.domain.errors import ValidationFailed
from tidings.support.tracing import Traces

USER_AGENT = "Tidings-Feeds/1"


class FeedSender:
    def __init__(self, client: httpx.AsyncClient, *, allow_private: bool = False,
                 timeout_s: float = 10.0, traces: Traces | None = None) -> None:
        self._client = client
        self._allow_private = allow_private
        self._timeout = timeout_s
        self._traces = traces or Traces.off()

    async def send(self, note: ChatMessage, feed: Feed) -> Attempt:
        started = time.monotonic()
        try:
            await check_target_url(feed.webhook_url, self._allow_private)
        except UnresolvableTarget as exc:
            return Attempt(Outcome.TRANSIENT, error=exc.message)
        except ValidationFailed as exc:
            return Attempt(Outcome.PERMANENT, error=exc.message)
        content = json.dumps(feed_body(feed.kind, note), ensure_ascii=False,
                             separators=(",", ":")).encode()
        headers = {"User-Agent": USER_AGENT}
        # The receiving side may join the notification's trace (the send's span is current).
        traceparent = self._traces.current()
        if traceparent is not None:
            headers["traceparent"] = traceparent
        answer = await post_json(self._client, feed.webhook_url, content, headers,
                                 self._timeout)
        attempt = answer.attempt
        return Attempt(attempt.outcome, code=attempt.code, error=attempt.error,
                       retry_after_s=attempt.retry_after_s,
                       elapsed_s=time.monotonic() - started)
