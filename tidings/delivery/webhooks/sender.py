"""Events POSTed to producers' registered URLs, signed per Standard Webhooks.

The body is `{"type", "timestamp", "data"}` with the event's time as RFC 3339 UTC; the
headers are `webhook-id` (the event id, the same on every attempt, so receivers can
de-duplicate), `webhook-timestamp` (when this attempt was signed: receivers reject
signatures older than a few minutes, so a retry signs afresh) and `webhook-signature`
(`v1,<base64 HMAC-SHA256>` over "id.timestamp.body").

With tracing on, each POST carries the W3C `traceparent` of its send's span.

Guarantees: `send` never raises for the network or the receiver; redirects are not
followed; unless private targets are allowed, the URL is checked again before each POST,
because the name it was registered with may now point inside our network.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from tidings.delivery.http_post import post_json
from tidings.delivery.messages import WebhookEvent
from tidings.delivery.outcome import Attempt, Outcome
from tidings.delivery.targets import UnresolvableTarget, check_target_url
from tidings.domain.errors import ValidationFailed
from tidings.support.tracing import Traces

SECRET_PREFIX = "whsec_"
USER_AGENT = "Tidings-Webhooks/1"


def generate_secret(nbytes: int = 32) -> str:
    """A new signing secret as handed to the admin: "whsec_" + base64 of random bytes."""
    if not 24 <= nbytes <= 64:
        raise ValueError("a webhook secret has 24 to 64 random bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


class WebhookSender:
    """POSTs `WebhookEvent`s on a client owned by the caller."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        allow_private: bool = False,
        timeout_s: float = 10.0,
        traces: Traces | None = None,
    ) -> None:
        self._client = client
        self._traces = traces or Traces.off()
        self._allow_private = allow_private
        self._timeout = timeout_s

    async def send(self, event: WebhookEvent) -> Attempt:
        started = time.monotonic()
        try:
            signer = Webhook(event.secret)
        except (ValueError, RuntimeError, EmptyWebhookSecretError):
            return Attempt(Outcome.PERMANENT, error="unusable webhook secret")
        try:
            body = encode_event(event)
        except (TypeError, ValueError, OverflowError, OSError) as exc:
            return Attempt(Outcome.PERMANENT, error=f"cannot encode the event: {exc}")
        try:
            await check_target_url(event.url, self._allow_private)
        except UnresolvableTarget as exc:
            return Attempt(Outcome.TRANSIENT, error=exc.message)
        except ValidationFailed as exc:
            return Attempt(Outcome.PERMANENT, error=exc.message)
        signed_at = datetime.now(UTC)
        headers = {
            "webhook-id": event.id,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": signer.sign(event.id, signed_at, body),
            "User-Agent": USER_AGENT,
        }
        # The receiver's work joins the notification's trace (the send's span is current).
        traceparent = self._traces.current()
        if traceparent is not None:
            headers["traceparent"] = traceparent
        answer = await post_json(self._client, event.url, body.encode(), headers, self._timeout)
        attempt = answer.attempt
        return Attempt(
            attempt.outcome,
            code=attempt.code,
            error=attempt.error,
            provider_id=event.id if attempt.outcome is Outcome.SENT else None,
            retry_after_s=attempt.retry_after_s,
            elapsed_s=time.monotonic() - started,
        )

    async def close(self) -> None:
        """Nothing of its own to release: the HTTP client belongs to the caller."""


def encode_event(event: WebhookEvent) -> str:
    """The exact text that is signed and sent."""
    when = datetime.fromtimestamp(event.timestamp, UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"type": event.type, "timestamp": when, "data": dict(event.data)},
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
