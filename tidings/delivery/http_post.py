"""One POST to a provider (JSON, or a form for Twilio), turned into an `Attempt`: what the
HTTP email, SMS and push services, Twilio and the webhook senders share.

Guarantees: never raises for anything the network or the peer does; never follows a
redirect (a 3xx is the peer's answer, judged like any other); reads at most
`MAX_BODY_BYTES` of the answer; the whole exchange, connecting included, is bounded by
`timeout_s`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from tidings.delivery.outcome import Attempt, Outcome, classify_http, parse_retry_after

MAX_BODY_BYTES = 65_536
_BARE_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class Answer:
    attempt: Attempt
    body: Any = None  # the answer's JSON when it was JSON and small enough, else None
    # The first words of an answer that was not JSON (some services answer errors as a
    # bare code, "channel_is_archived"), for the error record; "" otherwise.
    text: str = ""


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    content: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
) -> Answer:
    return await post(client, url, content, headers, timeout_s, "application/json")


async def post(
    client: httpx.AsyncClient,
    url: str,
    content: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    content_type: str,
) -> Answer:
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s), client.stream(
            "POST",
            url,
            content=content,
            headers={"Content-Type": content_type, **headers},
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
        ) as response:
            status = response.status_code
            retry_after = response.headers.get("Retry-After")
            raw = await _read_capped(response)
    except (httpx.TimeoutException, TimeoutError):
        return _network("timed out", started)
    except httpx.HTTPError as exc:  # connection refused, reset, TLS, protocol errors
        return _network(f"{type(exc).__name__}: {_short(str(exc))}", started)
    outcome = classify_http(status)
    body = _json(raw)
    text = "" if body is not None else _short(raw.decode("utf-8", "replace"))
    attempt = Attempt(
        outcome,
        code=str(status),
        error=None if outcome is Outcome.SENT else f"HTTP {status}{_reason(body, text)}",
        retry_after_s=parse_retry_after(retry_after) if outcome is Outcome.TRANSIENT else None,
        elapsed_s=time.monotonic() - started,
    )
    return Answer(attempt, body, text)


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY_BYTES:
            break
    return b"".join(chunks)[:MAX_BODY_BYTES]


def _network(error: str, started: float) -> Answer:
    return Answer(
        Attempt(Outcome.TRANSIENT, error=error, elapsed_s=time.monotonic() - started)
    )


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _reason(body: Any, text: str) -> str:
    """The peer's own explanation when it gave one as JSON ("error" or "message"), or as a
    bare code (one word, like Slack's "invalid_payload"); never a longer raw body, which
    might echo what we sent."""
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str) and body[key].strip():
                return f": {_short(body[key])}"
    if text and _BARE_CODE.fullmatch(text):
        return f": {text}"
    return ""


def _short(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]
