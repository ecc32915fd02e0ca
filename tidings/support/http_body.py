"""Reading an HTTP request body through ASGI without ever holding more than a bound.

Shared by the HTTP API's body limit (`api/limits.py`) and the Socket.IO long-polling POST
(`realtime/lean/polling.py`): both must refuse an oversized body while it streams in, not
after buffering it.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope


class BodyTooLarge(Exception):
    """The body is (or says it is) over the bound; nothing beyond the bound was kept."""


class ClientGone(Exception):
    """The client disconnected before the body was complete."""


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when absent or not a plain decimal."""
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = bytes(value)
            return int(text) if text.isdigit() else None
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, read chunk by chunk; BodyTooLarge as soon as the declared length or
    the bytes received so far pass `limit`, ClientGone if the client leaves first."""
    length = declared_length(scope)
    if length is not None and length > limit:
        raise BodyTooLarge(length)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(size)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app `body` (already read) first, then the real one (for
    the disconnect)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
