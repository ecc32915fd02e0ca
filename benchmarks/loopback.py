"""The tool only ever talks to this machine: every target URL is checked here."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit


class NotLoopbackError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    """A checked base URL, split into the parts the clients need."""

    host: str
    port: int

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/socket.io/?EIO=4&transport=websocket"


def parse_target(url: str) -> Target:
    """Accept only http://<loopback>:<port>; ``localhost`` is pinned to 127.0.0.1.

    Resolving names is deliberately not done: a name could resolve elsewhere.
    """
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise NotLoopbackError(f"only plain http:// on loopback is supported, got {url!r}")
    host = parts.hostname or ""
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise NotLoopbackError(f"target host must be a loopback IP address, got {host!r}") from exc
    if not address.is_loopback:
        raise NotLoopbackError(f"refusing non-loopback target {host}")
    if address.version == 6:
        host = f"[{host}]"
    return Target(host=host, port=parts.port or 80)


def source_addresses(count: int) -> list[str]:
    """127.0.0.2, 127.0.0.3, ...: each source IP has its own ~28k ephemeral ports."""
    if not 0 <= count <= 250:
        raise ValueError("between 0 and 250 source addresses")
    return [f"127.0.0.{2 + i}" for i in range(count)]
