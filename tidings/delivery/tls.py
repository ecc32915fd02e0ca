"""The TLS trust of the outbound HTTP client that every provider but APNs shares."""

from __future__ import annotations

import functools
import ssl

import certifi


@functools.cache
def default_tls() -> ssl.SSLContext:
    """httpx's own default trust (certifi's CA bundle), built once per process: building
    it costs tens of milliseconds, paid at every start otherwise (and by each of the many
    servers a test process starts). Shared only by HTTP/1.1 clients, which leave it as
    built; APNs' HTTP/2 client has its own, since the connection sets ALPN on it."""
    return ssl.create_default_context(cafile=certifi.where())
