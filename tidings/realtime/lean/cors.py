"""Which origins may use `/socket.io/`: no list means the request's own origin only, `*`
any origin (without credentials), otherwise exactly the listed ones.

Browsers do not apply CORS to WebSockets, so the check matters most there: without it
any web page could open a socket with a user's cookies.

The request's own origin is its Host (and scheme); behind a reverse proxy that rewrites
them, the proxy's X-Forwarded-Host/-Proto stand in, but only when the request comes from
one of the configured proxies: from anyone else they are the client's word, and ignored.
"""

from __future__ import annotations

import ipaddress

from starlette.types import Scope

Headers = list[tuple[bytes, bytes]]

_HTTP_SCHEMES = {"ws": "http", "wss": "https"}


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class CorsPolicy:
    __slots__ = ("_allowed", "_any", "_proxies")

    def __init__(self, origins: list[str], trusted_proxies: list[str] | None = None) -> None:
        """Raises ValueError for a proxy that is neither an address nor a network."""
        self._any = "*" in origins
        self._allowed = frozenset(origins)
        self._proxies = tuple(ipaddress.ip_network(proxy, strict=False)
                              for proxy in trusted_proxies or ())

    def allows(self, scope: Scope) -> bool:
        """A request without an Origin header (not from a browser page) is always allowed."""
        origin = header(scope, b"origin")
        if origin is None or self._any:
            return True
        if self._allowed:
            return origin in self._allowed
        return origin in self._same_origins(scope)

    def headers(self, scope: Scope) -> Headers:
        """The CORS headers of a response to an allowed request.

        With `*` the answer is the wildcard, which the CORS rules forbid to combine with
        credentials: a page from any origin may connect, but its browser sends no cookies
        and shows it no credentialed response. Named or same origins are echoed, with
        credentials.
        """
        result: Headers = []
        origin = header(scope, b"origin")
        if origin is not None:
            if self._any:
                result.append((b"access-control-allow-origin", b"*"))
            else:
                result += [(b"access-control-allow-origin", origin.encode("latin-1")),
                           (b"access-control-allow-credentials", b"true"),
                           (b"vary", b"Origin")]
        if scope.get("method") == "OPTIONS":
            result.append((b"access-control-allow-methods", b"OPTIONS, GET, POST"))
            asked = header(scope, b"access-control-request-headers")
            if asked is not None:
                result.append((b"access-control-allow-headers", asked.encode("latin-1")))
        return result

    def _same_origins(self, scope: Scope) -> list[str]:
        """The request's own origin, and the one a trusted reverse proxy says it forwarded."""
        host = header(scope, b"host")
        if host is None:
            return []
        scheme = str(scope.get("scheme", "http"))
        scheme = _HTTP_SCHEMES.get(scheme, scheme)
        origins = [f"{scheme}://{host}"]
        if not self._from_proxy(scope):
            return origins
        forwarded_proto = header(scope, b"x-forwarded-proto")
        forwarded_host = header(scope, b"x-forwarded-host")
        if forwarded_proto or forwarded_host:
            proto = (forwarded_proto or scheme).split(",")[0].strip()
            forwarded = (forwarded_host or host).split(",")[0].strip()
            origins.append(f"{proto}://{forwarded}")
        return origins

    def _from_proxy(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not self._proxies or not client:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:  # a Unix socket path, or no address at all
            return False
        return any(address in network for network in self._proxies)
