"""Bounds request bodies before anything parses them."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.support.http_body import (
    BodyTooLarge,
    ClientGone,
    declared_length,
    read_body,
    replaying,
)


class BodySizeLimit:
    """Answers 413 for a body over `max_bytes`.

    A declared Content-Length is checked up front; a streamed (chunked) body is read here
    first, at most `max_bytes` of it, and handed on whole, so the app never sees a partial
    body and no oversized one is ever held in memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length <= self.max_bytes:
            # A declared length within bounds: the server delivers no more than that.
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(scope, receive, self.max_bytes)
        except BodyTooLarge:
            await self._reject(send)
            return
        except ClientGone:
            return
        await self.app(scope, replaying(body, receive), send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"error": {"code": "payload_too_large",
                                     "message": f"the body is over {self.max_bytes} bytes",
                                     "field": "body"}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
