"""The outermost ASGI layer of HTTP requests: a request id and a count of answers.

Every HTTP request gets an id, taken from its `X-Request-ID` header when that is a sane
value (1-128 characters of letters, digits and `-_.:/+=@`) and made up otherwise; it is set
in `tidings.config.logs.REQUEST_ID` for everything logged while the request is served, and echoed
in the response's `X-Request-ID` header. Each response start is counted in
`tidings_http_responses_total{code}`, whatever layer answered (routes, error handlers, the
body-size limit, Socket.IO polling). WebSocket and lifespan traffic passes straight through.

This sits on the path of every create, so it does the least it can: one header scan, one
id, one dictionary lookup to find the counter of a status code.
"""

from __future__ import annotations

import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.config.logs import REQUEST_ID
from tidings.support.metrics import Metrics

HEADER = b"x-request-id"
SANE_ID = re.compile(rb"[A-Za-z0-9\-_.:/+=@]{1,128}")


def new_request_id() -> str:
    return secrets.token_hex(8)


def request_id_from(scope: Scope) -> str:
    """The caller's id when it is sane (it ends up in logs and headers), else a new one."""
    for name, value in scope["headers"]:
        if name == HEADER:
            if SANE_ID.fullmatch(value):
                return bytes(value).decode("ascii")
            break
    return new_request_id()


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        echoed = (HEADER, request_id.encode("ascii"))
        count = self.metrics.count_response

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                count(message["status"])
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if not started:  # the server answers 500 for an app that raised unanswered
                count(500)
            raise
        finally:
            REQUEST_ID.reset(token)
