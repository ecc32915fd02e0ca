"""The create edge: what `POST /api/notifications` does with a request, whichever transport
carried it (the lean ASGI path of `fast_create.py`, or the FastAPI route of
`notifications.py`), so that the two differ only in how they read the request and send the
answer.

Admission keeps the order FastAPI gives a route with a JSON body and a bearer dependency
(the operation the OpenAPI document describes): the body is decoded first (400
`invalid_json`), then the caller authenticated (401), then the draft validated (422). The
creation service judges the rest (403, the idempotency key's 422, 429, ...). Every answer,
refusals included, is shaped here with the error table of `errors.py`.
"""

from __future__ import annotations

import email.message
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from tidings.api.errors import InvalidJson, headers_of, status_of
from tidings.domain.errors import AuthenticationFailed, TidingsError
from tidings.domain.inputs import NotificationDraft, first_problem
from tidings.domain.model import Principal
from tidings.domain.notification import Created, CreateOutcome
from tidings.services.creation import CreationService
from tidings.services.tokens import TokenService
from tidings.support.tracing import SpanKind, Traces, failed

JSON = "application/json"
CREATE_SPAN = "POST /api/notifications"
CREATE_ATTRIBUTES = {"http.request.method": "POST", "http.route": "/api/notifications"}
_validate = NotificationDraft.__pydantic_validator__.validate_python
# orjson reads an integer of more than 64 bits as a float; json.loads keeps it an int.
# A run of 19 digits anywhere sends the body to json.loads.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
# FastAPI's error for a request without a body, in its location.
_NO_BODY = [{"type": "missing", "loc": ("body",), "msg": "Field required"}]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Answer:
    """A create's answer, ready to send: the status, the JSON bytes, the extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] | None = None

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers as Starlette's `JSONResponse` sends them, in its order."""
        raw = [(name.lower().encode("latin-1"), value.encode("latin-1"))
               for name, value in self.headers.items()] if self.headers else []
        raw.append((b"content-length", str(len(self.body)).encode("latin-1")))
        raw.append((b"content-type", JSON.encode("latin-1")))
        return raw


async def answer(tokens: TokenService, creation: CreationService, body: bytes, *,
                 is_json: bool, authorization: str | None, key: str | None,
                 traces: Traces | None = None, traceparent: str | None = None) -> Answer:
    """Admit the request and create, or refuse it. `is_json`: the request declared a JSON
    type (`declares_json`); `authorization`, `key` and `traceparent` are its
    `Authorization`, `Idempotency-Key` and `traceparent` headers. What is not a
    `TidingsError` is raised for the transport to answer 500, as Starlette's
    `ServerErrorMiddleware` does. With tracing on, the create is a span joined to the
    producer's trace (a new trace without a valid `traceparent`)."""
    if traces is None or not traces.on:
        return await _answer(tokens, creation, body, is_json, authorization, key)
    with traces.span(CREATE_SPAN, parent=traceparent, kind=SpanKind.SERVER,
                     attributes=CREATE_ATTRIBUTES) as span:
        result = await _answer(tokens, creation, body, is_json, authorization, key)
        if span is not None:
            span.set_attribute("http.response.status_code", result.status)
            if result.status >= 500:
                failed(span, "server error")
        return result


async def _answer(tokens: TokenService, creation: CreationService, body: bytes,
                  is_json: bool, authorization: str | None, key: str | None) -> Answer:
    try:
        principal, draft = admit(tokens, body, is_json=is_json, authorization=authorization)
        outcome = await creation.create(principal, draft, key)
    except TidingsError as exc:
        return refusal(exc)
    return created(outcome)


def admit(tokens: TokenService, body: bytes, *, is_json: bool,
          authorization: str | None) -> tuple[Principal, NotificationDraft]:
    """The caller and the draft, in FastAPI's order; InvalidJson, AuthenticationFailed or
    ValidationFailed for a request that is refused."""
    data = _data(body, is_json)
    token = bearer(authorization)
    if token is None:
        raise AuthenticationFailed("missing bearer token")
    principal = tokens.verify(token)
    if data is _MISSING:
        raise first_problem(_NO_BODY, "body")
    try:
        # FastAPI validates a body field with `from_attributes=True`.
        draft: NotificationDraft = _validate(data, from_attributes=True)
    except ValidationError as exc:
        raise first_problem(exc.errors(), "body") from exc
    return principal, draft


def created(outcome: CreateOutcome) -> Answer:
    if isinstance(outcome, Created):
        notification = outcome.notification
        try:
            # The JSON the socket event of this create carries too (written once).
            return Answer(201, notification.to_json_bytes())
        except TypeError:  # what orjson refuses: `encode`'s fallback
            return Answer(201, encode(notification.to_json()))
    return Answer(202, encode(outcome.body()))


def refusal(exc: TidingsError) -> Answer:
    status = status_of(exc)
    return Answer(status, encode({"error": exc.body()}), headers_of(exc, status))


def declares_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of this type as JSON: `application/json` or
    `application/*+json`, with parameters or not; a body without a type is not JSON."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def bearer(authorization: str | None) -> str | None:
    """The token as FastAPI's `HTTPBearer(auto_error=False)` takes it, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if not scheme or not token or scheme.lower() != "bearer":
        return None
    return token


def _data(body: bytes, is_json: bool) -> Any:
    """What FastAPI validates: the decoded JSON of a JSON type, the bytes themselves
    otherwise (they fail validation), `_MISSING` for an empty body."""
    if not body:
        return _MISSING
    if not is_json:
        return body
    try:
        return decode(body)
    except Exception as exc:  # not JSON, not UTF-8, nested beyond the recursion limit
        raise InvalidJson() from exc


def decode(body: bytes) -> Any:
    """The body as Starlette's `Request.json()` decodes it (`json.loads`), at orjson's
    speed. What orjson would read otherwise (long integers) or refuses where json.loads
    does not (NaN, 1e400, lone surrogates, a BOM, UTF-16) gets `json.loads` itself."""
    if _LONG_DIGITS.search(body) is None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return json.loads(body)


def encode(content: Any) -> bytes:
    """The JSON of Starlette's `JSONResponse` (compact, UTF-8, no NaN); orjson spells some
    small floats of `data` differently (1e-7 for 1e-07), the same numbers. Integers beyond
    64 bits, which orjson refuses, take `json.dumps`."""
    try:
        return orjson.dumps(content)
    except TypeError:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":")).encode("utf-8")
