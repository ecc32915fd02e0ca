"""Redis behind Sentinel: `REDIS_URL=redis+sentinel://[:password@]host:port[,host:port...]
/service[/db]` names the Sentinels to ask, the service they watch (the master's name in
their `sentinel monitor` line) and the database number (default 0).

A password in that URL is the Sentinels' own (`requirepass` in their configuration);
REDIS_PASSWORD is the master's, as for a plain REDIS_URL.

Every connection made through `master_pool` asks the Sentinels where the master is when it
opens, so a connection lost in a failover opens again on the new master (Sentinel closes
the clients of a master it demotes). The fan-out also asks them every second
(`SentinelLinks.changed`), for an old master that runs on without being demoted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True, slots=True)
class SentinelAddress:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None  # the Sentinels' own


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0].lower().endswith("+sentinel")


def parse_sentinel_url(url: str) -> SentinelAddress:
    """The parts of a `redis+sentinel://` URL; a ValueError says what is wrong."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() != SCHEME:
        raise ValueError(f"{scheme}:// is not supported; Sentinels are named as "
                         f"{SCHEME}://host:port,host:port/service")
    userinfo, at, hosts_and_path = rest.rpartition("@")
    if not at:
        userinfo, hosts_and_path = "", rest
    hosts, _, path = hosts_and_path.partition("/")
    parts = [part for part in path.split("/") if part]
    if not parts or len(parts) > 2:
        raise ValueError(f"name the service after the Sentinels ({SCHEME}://"
                         "host:port,host:port/mymaster, optionally /db after it)")
    if len(parts) == 2 and not parts[1].isdigit():
        raise ValueError(f"the database after the service must be a number, not {parts[1]!r}")
    sentinels = tuple(_host_port(item) for item in hosts.split(",") if item.strip())
    if not sentinels:
        raise ValueError(f"name at least one Sentinel ({SCHEME}://host:port/service)")
    username, _, password = userinfo.partition(":")
    return SentinelAddress(sentinels, unquote(parts[0]),
                           int(parts[1]) if len(parts) == 2 else 0,
                           unquote(username) or None, unquote(password) or None)


def _host_port(item: str) -> tuple[str, int]:
    # A bracketed IPv6 address keeps its colons: [::1]:26379.
    split = urlsplit(f"//{item.strip()}")
    try:
        port = split.port
    except ValueError:
        raise ValueError(f"{item.strip()!r} is not host:port") from None
    if not split.hostname:
        raise ValueError(f"{item.strip()!r} is not host:port")
    return split.hostname, port or DEFAULT_SENTINEL_PORT


def open_sentinel(address: SentinelAddress, timeout_s: float) -> Sentinel:
    """A client of the Sentinels (one connection each, opened when first asked)."""
    sentinel_options: dict[str, Any] = {"socket_timeout": timeout_s,
                                        "socket_connect_timeout": timeout_s}
    if address.password is not None:
        sentinel_options["password"] = address.password
        sentinel_options["username"] = address.username
    return Sentinel(
        list(address.sentinels), sentinel_kwargs=sentinel_options)


def master_pool(sentinel: Sentinel, address: SentinelAddress,
                **options: Any) -> SentinelConnectionPool:
    """A connection pool whose every new connection goes to the current master.
    `options` are the usual connection options (password, timeouts, retry)."""
    return SentinelConnectionPool(  # type: ignore[no-untyped-call]
        address.service, sentinel, db=address.db, **options)
