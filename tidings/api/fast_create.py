"""`POST /api/notifications` without FastAPI's per-request machinery.

A create is the hottest request of the service, and FastAPI's path for it (the middleware
stack, routing over every route, a Request object, dependency resolution, header
parameters, the response object) cost about as much server CPU as the create's own work.
This ASGI layer answers a create with a JSON body itself: admission and answer are those
of the FastAPI route, from the one create edge (`create_edge.py`); only the transport
differs (the headers scanned once, the body read and the answer sent on the raw ASGI
calls).

Requests it does not take are handed to the FastAPI app before their body is read: another
content type (FastAPI reads `+json` types too, and refuses the rest in its words, by the
same create edge), and a cross-origin request when CORS is on (the CORS middleware adds its
headers). The route stays declared for the OpenAPI document and for those requests.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.api import create_edge
from tidings.api.bundle import ApiServices
from tidings.api.errors import UNEXPECTED, log_unexpected

PATH = "/api/notifications"


class FastCreate:
    """Serves `POST /api/notifications` ahead of the FastAPI app `app`, which gets every
    other request (and the creates handed off)."""

    def __init__(self, app: ASGIApp, services: ApiServices, *, cors: bool) -> None:
        self.app = app
        self.services = services
        # With CORS on, a request carrying `Origin` needs the CORS middleware's headers;
        # every answer gets its `Vary: Origin` (added here, as that middleware does).
        self.cors = cors
        self._vary = [(b"vary", b"Origin")] if cors else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        authorization, key, is_json, origin, traceparent = _scan(scope["headers"])
        if not is_json or (origin and self.cors):
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        if body is None:
            return  # the client left before sending its body: nobody to answer
        services = self.services
        try:
            answer = await create_edge.answer(services.tokens, services.creation, body,
                                              is_json=True, authorization=authorization,
                                              key=key, traces=services.traces,
                                              traceparent=traceparent)
        except Exception as exc:
            # As Starlette's ServerErrorMiddleware: log, answer 500, re-raise for the server.
            log_unexpected(exc)
            await self._send(send, create_edge.Answer(500, create_edge.encode(
                {"error": UNEXPECTED})))
            raise
        await self._send(send, answer)

    async def _send(self, send: Send, answer: create_edge.Answer) -> None:
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [*answer.raw_headers(), *self._vary]})
        await send({"type": "http.response.body", "body": answer.body})


def _scan(headers: Any) -> tuple[str | None, str | None, bool, bool, str | None]:
    """One pass over the headers: Authorization, Idempotency-Key and traceparent (the
    first of each, as Starlette's `Headers.get`), whether the body is declared JSON,
    whether Origin is set."""
    authorization = key = traceparent = None
    content_type = b""
    origin = False
    for name, value in headers:
        if name == b"authorization":
            if authorization is None:
                authorization = bytes(value).decode("latin-1")
        elif name == b"idempotency-key":
            if key is None:
                key = bytes(value).decode("latin-1")
        elif name == b"content-type":
            if not content_type:
                content_type = bytes(value)
        elif name == b"origin":
            origin = True
        elif name == b"traceparent":
            if traceparent is None:
                traceparent = bytes(value).decode("latin-1")
    return authorization, key, _declares_json(content_type), origin, traceparent


def _declares_json(content_type: bytes) -> bool:
    """`application/json`, with parameters or not, in any case: the JSON type this path
    takes. Other JSON types (`+json`) and odd spellings go the FastAPI way."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json"


async def _read(receive: Receive) -> bytes | None:
    """The whole body (`BodySizeLimit`, outside, has bounded it), or None if the client
    disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)

