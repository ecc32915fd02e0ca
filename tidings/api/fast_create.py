"""`POST /api/notifications` without FastAPI's per-request machinery.

A create is the hottest request of the service, and FastAPI's path for it (the middleware
stack, routing over every route, a Request object, dependency resolution, header
parameters, the response object) cost about as much server CPU as the create's own work.
This ASGI layer answers the common case itself: a JSON body, a bearer token, a valid draft.
It does what the FastAPI route `create_notification` does, in the same order, with the same
code (the token service, the creation service with its rate limit, the error table of
`errors.py`), and answers the same JSON.

Anything off that path is handed to the FastAPI route with the body it read, untouched: a
body that is not JSON, a missing or failing token, a draft that fails validation, another
content type, a cross-origin request when CORS is on. Their answers are therefore FastAPI's
own by construction, and so are the 400/401/422 precedences between them (FastAPI decodes
the body, then authenticates, then validates). The route stays declared for the OpenAPI
document and for those requests.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.api.bundle import ApiServices
from tidings.api.errors import UNEXPECTED, headers_of, log_unexpected, status_of
from tidings.domain.errors import TidingsError
from tidings.domain.inputs import NotificationDraft
from tidings.domain.model import Principal
from tidings.domain.notification import Created
from tidings.support.http_body import replaying

PATH = "/api/notifications"
_JSON = (b"content-type", b"application/json")
_validate = NotificationDraft.__pydantic_validator__.validate_python
# orjson reads an integer of more than 64 bits as a float; json.loads keeps it an int.
# A run of 19 digits anywhere sends the body to json.loads.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


class Handoff(Exception):
    """This request is not the lean path's to answer: the FastAPI route answers it."""


class FastCreate:
    """Serves `POST /api/notifications` ahead of the FastAPI app `app`, which gets every
    other request (and the creates handed off)."""

    def __init__(self, app: ASGIApp, services: ApiServices, *, cors: bool) -> None:
        self.app = app
        self.services = services
        # With CORS on, a request carrying `Origin` needs the CORS middleware's headers.
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        authorization, key, is_json, origin = _scan(scope["headers"])
        if not is_json or (origin and self.cors):
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        if body is None:
            return  # the client left before sending its body: nobody to answer
        try:
            principal, draft = self._admit(body, authorization)
        except Handoff:
            await self.app(scope, replaying(body, receive), send)
            return
        await self._create(principal, draft, key, send)

    def _admit(self, body: bytes,
               authorization: str | None) -> tuple[Principal, NotificationDraft]:
        """The caller and the draft, decoded and checked as FastAPI would, in its order;
        Handoff for anything FastAPI would refuse (it then answers, in its own words)."""
        try:
            data = _decode(body)
        except Exception as exc:  # not JSON, not UTF-8, nested beyond the recursion limit
            raise Handoff() from exc
        token = _bearer(authorization)
        if token is None:
            raise Handoff()
        try:
            principal = self.services.tokens.verify(token)
            # FastAPI validates the body field with `from_attributes=True`.
            draft: NotificationDraft = _validate(data, from_attributes=True)
        except Exception as exc:  # a failed token or draft; FastAPI answers it its own way
            raise Handoff() from exc
        return principal, draft

    async def _create(self, principal: Principal, draft: NotificationDraft,
                      key: str | None, send: Send) -> None:
        services = self.services
        try:
            outcome = await services.creation.create(principal, draft, key)
        except TidingsError as exc:
            status = status_of(exc)
            await _answer(send, status, {"error": exc.body()}, headers_of(exc, status))
            return
        except Exception as exc:
            # As Starlette's ServerErrorMiddleware: log, answer 500, re-raise for the server.
            log_unexpected(exc)
            await _answer(send, 500, {"error": UNEXPECTED})
            raise
        if isinstance(outcome, Created):
            await _answer(send, 201, outcome.notification.to_json())
        else:
            await _answer(send, 202, {"count": outcome.count, "channel": outcome.channel})


def _scan(headers: Any) -> tuple[str | None, str | None, bool, bool]:
    """One pass over the headers: Authorization and Idempotency-Key (the first of each, as
    Starlette's `Headers.get`), whether the body is declared JSON, whether Origin is set."""
    authorization = key = None
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
    return authorization, key, _declares_json(content_type), origin


def _declares_json(content_type: bytes) -> bool:
    """`application/json`, with parameters or not, in any case: what FastAPI decodes as
    JSON. Other JSON types (`+json`) and odd spellings go the FastAPI way."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json"


def _bearer(authorization: str | None) -> str | None:
    """The token as FastAPI's `HTTPBearer(auto_error=False)` takes it, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if not scheme or not token or scheme.lower() != "bearer":
        return None
    return token


def _decode(body: bytes) -> Any:
    """The body as Starlette's `Request.json()` decodes it (`json.loads`), at orjson's
    speed. What orjson would read otherwise (long integers) or refuses where json.loads
    does not (NaN, 1e400, lone surrogates, a BOM, UTF-16) gets `json.loads` itself."""
    if _LONG_DIGITS.search(body) is None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return json.loads(body)


def _encode(content: Any) -> bytes:
    """The JSON of Starlette's `JSONResponse` (compact, UTF-8, no NaN); orjson spells some
    small floats of `data` differently (1e-7 for 1e-07), the same numbers. Integers beyond
    64 bits, which orjson refuses, take `json.dumps`."""
    try:
        return orjson.dumps(content)
    except TypeError:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":")).encode("utf-8")


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


async def _answer(send: Send, status: int, content: Any,
                  headers: dict[str, str] | None = None) -> None:
    """What Starlette's `JSONResponse` sends: the same JSON and header order."""
    body = _encode(content)
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1"))
           for name, value in headers.items()] if headers else []
    raw.append((b"content-length", str(len(body)).encode("latin-1")))
    raw.append(_JSON)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
