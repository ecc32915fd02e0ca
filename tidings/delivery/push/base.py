"""What every push sender shares: the `PushSender` protocol, turning transport failures
into attempts, stable message ids, and fitting a payload under a provider's size limit.

Kept apart from `push.py` (the router and factory) so that the provider modules can use it
without importing each other.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import httpx

from tidings.delivery.messages import Device, Push
from tidings.delivery.outcome import Attempt, Outcome, classify_http, parse_retry_after

# Any fixed namespace will do; it only has to stay the same across releases, so that every
# attempt of one delivery carries the same apns-id.
_ID_NAMESPACE = uuid.UUID("0b7e4f0c-6a4e-4c1e-9d59-2f1c3d7a8e55")
# How much of a provider's error text goes into `Attempt.error` (it is for people).
_ERROR_TEXT_MAX = 200
ELLIPSIS = "\u2026"


class PushSender(Protocol):
    """Hands one rendered push to one device's provider.

    `send` never raises for a provider failure (refusal, timeout, refused connection): it
    answers an `Attempt` whose `device_id` is `device.id`, and whose outcome `GONE` means
    the device or subscription no longer exists and should be disabled. `close` releases
    what the sender owns (never a client that was handed to it)."""

    async def send(self, device: Device, push: Push) -> Attempt: ...

    async def close(self) -> None: ...


def stable_id(push: Push, device: Device) -> str:
    """The push's idempotency key, or one derived from the notification and the device."""
    return push.idempotency_key or f"{push.notification_id}:{device.id}"


def stable_uuid(key: str) -> uuid.UUID:
    """A UUID that depends on `key` alone, so every retry of a message reuses it."""
    return uuid.uuid5(_ID_NAMESPACE, key)


def is_urgent(push: Push) -> bool:
    return push.priority in ("high", "critical")


def failed(outcome: Outcome, error: str, code: str | None = None) -> Attempt:
    return Attempt(outcome=outcome, code=code, error=error)


def network_failure(exc: Exception) -> Attempt:
    """Timeouts, refused connections and broken streams: worth trying again later."""
    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "network"
    # The exception's class says enough; its text may echo a URL carrying a token.
    return Attempt(outcome=Outcome.TRANSIENT, code=kind, error=f"{kind}: {type(exc).__name__}")


def http_failure(
    response: httpx.Response, code: str | None = None, outcome: Outcome | None = None
) -> Attempt:
    """An HTTP answer that was not a success, classified by the contract unless `outcome`
    says otherwise, with the provider's Retry-After and a short excerpt of its text."""
    return Attempt(
        outcome=outcome or classify_http(response.status_code),
        code=code or str(response.status_code),
        error=f"HTTP {response.status_code}: {short_text(response)}".rstrip(": "),
        retry_after_s=parse_retry_after(response.headers.get("retry-after")),
    )


def short_text(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    if len(text) > _ERROR_TEXT_MAX:
        return text[:_ERROR_TEXT_MAX] + ELLIPSIS
    return text


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or an empty one when the body is anything else."""
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def finish(attempt: Attempt, device: Device, started: float) -> Attempt:
    return replace(attempt, device_id=device.id, elapsed_s=time.perf_counter() - started)


def fit_push(push: Push, encode: Callable[[Push, bool], bytes], limit: int) -> bytes:
    """`encode(push, truncated)` made to fit in `limit` bytes: the body is cut (ending in
    an ellipsis), the data dropped first when cutting the whole body would not be enough,
    and the title cut last; `truncated` is True as soon as anything was cut, so the app
    can tell. A push that fits is encoded untouched."""
    payload = encode(push, False)
    if len(payload) <= limit:
        return payload
    if push.data and len(payload) - limit >= len(push.body.encode()):
        push = replace(push, data={})
    payload = encode(push, True)
    # Each pass shortens a field by at least the excess, so this ends once both are empty.
    while len(payload) > limit and (push.body or push.title):
        excess = len(payload) - limit
        if push.body:
            push = replace(push, body=_cut(push.body, excess))
        else:
            push = replace(push, title=_cut(push.title, excess))
        payload = encode(push, True)
    return payload


def _cut(text: str, excess: int) -> str:
    """`text` shortened by at least `excess` bytes of UTF-8 (plus room for the ellipsis),
    on a character boundary; empty when too little would remain."""
    raw = text.removesuffix(ELLIPSIS).encode()
    keep = len(raw) - excess - len(ELLIPSIS.encode())
    if keep <= 0:
        return ""
    return raw[:keep].decode(errors="ignore") + ELLIPSIS


def compact_json(value: Any) -> bytes:
    """UTF-8 JSON without spaces; values JSON lacks (dates, ids) are written as strings."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()
