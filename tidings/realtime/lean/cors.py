"""Which origins may use `/socket.io/`, with python-socketio's rules: no list means the
request's own origin only, `*` any origin, otherwise exactly the listed ones.

Browsers do not apply CORS to WebSockets, so the check matters most there: without it
any web page could open a socket with a user's cookies.
"""

from __future__ import annotations

from starlette.types import Scope

Headers = list[tuple[bytes, bytes]]

_HTTP_SCHEMES = {"ws": "http", "wss": "https"}


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class CorsPolicy:
    __slots__ = ("_allowed", "_any")

    def __init__(self, origins: list[str]) -> None:
        self._any = "*" in origins
        self._allowed = frozenset(origins)

    def allows(self, scope: Scope) -> bool:
        """A request without an Origin header (not from a browser page) is always allowed."""
        origin = header(scope, b"origin")
        if origin is None or self._any:
            return True
        if self._allowed:
            return origin in self._allowed
        return origin in _same_origins(scope)

    def headers(self, scope: Scope) -> Headers:
        """The CORS headers of a response to an allowed request."""
        result: Headers = []
        origin = header(scope, b"origin")
        if origin is not None:
            result += [(b"access-control-allow-origin", origin.encode("latin-1")),
                       (b"access-control-allow-credentials", b"true")]
        if scope.get("method") == "OPTIONS":
            result.append((b"access-control-allow-methods", b"OPTIONS, GET, POST"))
            asked = header(scope, b"access-control-request-headers")
            if asked is not None:
                result.append((b"access-control-allow-headers", asked.encode("latin-1")))
        return result


def _same_origins(scope: Scope) -> list[str]:
    """The request's own origin, and the one a reverse proxy says it forwarded."""
    host = header(scope, b"host")
    if host is None:
        return []
    scheme = str(scope.get("scheme", "http"))
    scheme = _HTTP_SCHEMES.get(scheme, scheme)
    origins = [f"{scheme}://{host}"]
    forwarded_proto = header(scope, b"x-forwarded-proto")
    forwarded_host = header(scope, b"x-forwarded-host")
    if forwarded_proto or forwarded_host:
        proto = (forwarded_proto or scheme).split(",")[0].strip()
        forwarded = (forwarded_host or host).split(",")[0].strip()
        origins.append(f"{proto}://{forwarded}")
    return origins
