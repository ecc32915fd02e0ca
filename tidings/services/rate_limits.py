"""Rate limits and the socket cap: how often a producer may create notifications, how often
a socket may send events, and how many sockets a user may hold on one node.

Guarantees:
- creations are counted per producer (the token's `sub`) in fixed windows, with the
  `limits` library, in notifications: a request costs one per stored copy it makes (each
  recipient, each subscriber of a channel, each of every bulk item), is refused whole when
  that would cross the limit, and counts nothing when refused. With REDIS_URL set the
  counters live in Redis, so every node counts against the same budget. If Redis cannot
  be reached, creations are let through (and the outage logged): the limit protects the
  service, it must not be what stops it;
- events are counted per socket, in this process: a socket lives on one node, so its count
  needs no sharing, and it is dropped with the socket;
- a refused request may succeed after the `retry_after` seconds it carries.

Fixed windows rather than moving ones: one counter per key (one INCR in Redis, no list of
timestamps per key), which keeps the check negligible at thousands of creations per second.
The price, up to twice the rate across a window boundary, does not matter for stopping
floods.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage
from limits.aio.storage.redis.redispy import RedispyBridge
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from tidings.config.settings import Settings
from tidings.domain.errors import PayloadTooLarge, RateLimited, TooManyConnections
from tidings.support.redis_sentinel import master_pool, open_sentinel

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 1.0
REDIS_KEY_PREFIX = "tidings"


def parse_rate(value: str) -> RateLimitItem | None:
    """A rate from the settings ("200/second"); None when the limit is off ("0" or empty,
    which the settings normalise to empty)."""
    return parse(value) if value else None


def per_window(rate: RateLimitItem, what: str) -> str:
    """"3 notifications per minute", "50 events per 10 second"."""
    unit = rate.GRANULARITY.name
    window = unit if rate.multiples == 1 else f"{rate.multiples} {unit}s"
    return f"{rate.amount} {what} per {window}"


class CreateLimit:
    """How many notifications one producer may create per window, across all nodes that
    share the storage."""

    def __init__(self, rate: RateLimitItem | None, storage: Storage,
                 closers: Sequence[Callable[[], Awaitable[None]]] = ()) -> None:
        self._rate = rate
        self._storage = storage
        self._limiter = FixedWindowRateLimiter(storage)
        self._closers = closers  # what the storage's connections need to be closed
        self._storage_down = False

    @property
    def active(self) -> bool:
        """False when the limit is off: callers need not work out what a request costs."""
        return self._rate is not None

    async def check(self, producer: str, count: int = 1, field: str | None = None) -> None:
        """Counts `count` notifications created by `producer` in one request, all or none:
        RateLimited (retry later, nothing counted) when they would cross the limit;
        PayloadTooLarge naming `field` when they are more than a whole window allows, which
        no retry can change."""
        if self._rate is None or count <= 0:
            return
        if count > self._rate.amount:
            raise PayloadTooLarge(
                f"this request makes {count} notifications, more than this producer may "
                f"create in a whole window ({per_window(self._rate, 'notifications')}, "
                "RATE_LIMIT_CREATES): send fewer at once", field=field)
        rate = self._rate
        try:
            allowed = await self._limiter.hit(rate, "creates", producer, cost=count)
            if allowed:
                self._storage_up()
                return
            # The library counts a refused hit too: give it back, so that what the window
            # still holds stays usable by a smaller request. (Should the window end in
            # between, the next one allows `count` more: one refused request's worth.)
            await self._storage.incr(rate.key_for("creates", producer), rate.get_expiry(),
                                     amount=-count)
            stats = await self._limiter.get_window_stats(rate, "creates", producer)
        except StorageError as exc:
            if not self._storage_down:
                log.warning("rate-limit storage unreachable, creations not limited: %s", exc)
                self._storage_down = True
            return
        retry_after = math.ceil(stats.reset_time - time.time())
        raise RateLimited(
            f"this producer may create {per_window(self._rate, 'notifications')}: "
            f"retry in {retry_after} s",
            retry_after=retry_after,
        )

    def _storage_up(self) -> None:
        if self._storage_down:
            log.warning("rate-limit storage reachable again, creations limited")
            self._storage_down = False

    async def close(self) -> None:
        for close in self._closers:
            await close()


class EventBudget:
    """How many events each socket may send per window (the window starts at the socket's
    first event after the previous one ended). One small entry per socket, dropped by
    `forget` when it disconnects: O(1) per event whatever the number of sockets. (The
    `limits` in-memory store would also do, but it scans every key on each expiry pass,
    measured at ~100 µs per event with 10,000 sockets.)"""

    def __init__(self, rate: RateLimitItem | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._window_s = float(rate.get_expiry()) if rate else 0.0
        self._clock = clock
        self._windows: dict[str, list[float]] = {}  # sid -> [window end, count]

    def spend(self, sid: str) -> None:
        """Counts one event of `sid`; raises RateLimited when over the limit."""
        rate = self._rate
        if rate is None:
            return
        now = self._clock()
        window = self._windows.get(sid)
        if window is None or now >= window[0]:
            self._windows[sid] = [now + self._window_s, 1]
            return
        window[1] += 1
        if window[1] > rate.amount:
            retry_after = math.ceil(window[0] - now)
            raise RateLimited(
                f"this socket may send {per_window(rate, 'events')}: "
                f"retry in {retry_after} s",
                retry_after=retry_after,
            )

    def forget(self, sid: str) -> None:
        self._windows.pop(sid, None)


class SocketCap:
    """How many sockets one user may hold on this node (0: no cap)."""

    def __init__(self, max_per_user: int) -> None:
        self.max_per_user = max_per_user

    def admit(self, open_sockets: int) -> None:
        """Raises TooManyConnections when a user holding `open_sockets` may not open one
        more."""
        if self.max_per_user and open_sockets >= self.max_per_user:
            raise TooManyConnections("Too many connections")


@dataclass
class RateLimits:
    """The limits of one instance, built from its settings."""

    creates: CreateLimit
    events: EventBudget
    sockets: SocketCap

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(create_limit(settings),
                   EventBudget(parse_rate(settings.rate_limit_socket_events)),
                   SocketCap(settings.max_sockets_per_user))

    async def close(self) -> None:
        await self.creates.close()


def create_limit(settings: Settings) -> CreateLimit:
    """The creation limit on the storage the settings ask for: Redis when REDIS_URL is set
    (the key prefix keeps the counters apart from other users of the database), memory
    otherwise."""
    rate = parse_rate(settings.rate_limit_creates)
    if not settings.redis_url or rate is None:
        return CreateLimit(rate, MemoryStorage())
    options: dict[str, float | str] = {"socket_timeout": REDIS_TIMEOUT_S,
                                       "socket_connect_timeout": REDIS_TIMEOUT_S}
    if settings.redis_password:
        options["password"] = settings.redis_password
    sentinel_address = settings.redis_sentinel()
    if sentinel_address is not None:
        # Every connection goes to the master of the moment.
        sentinel = open_sentinel(sentinel_address, REDIS_TIMEOUT_S)
        managed = master_pool(sentinel, sentinel_address, **options)
        storage = _storage_on("redis://", managed)  # the pool says where connections go
        return CreateLimit(rate, storage, [managed.aclose, sentinel.aclose])
    if settings.redis_cluster:
        # Each producer's counter lives on the master of its key's slot.
        address = urlsplit(settings.redis_url).netloc
        cluster = RedisClusterStorage(f"async+redis+cluster://{address}",
                                      implementation="redispy", wrap_exceptions=True,
                                      key_prefix=REDIS_KEY_PREFIX, **options)
        bridge = cluster.bridge
        assert isinstance(bridge, RedispyBridge)  # the implementation asked for
        return CreateLimit(rate, cluster, [bridge.storage.aclose])
    pool = ConnectionPool.from_url(settings.redis_url, **options)
    return CreateLimit(rate, _storage_on(settings.redis_url, pool), [pool.aclose])


def _storage_on(url: str, pool: ConnectionPool) -> RedisStorage:
    scheme = "async+redis+" if url.startswith("unix://") else "async+"
    # The pool is ours (passed in, closed by `close`); the library's options are typed
    # for scalars only.
    shared: dict[str, Any] = {"connection_pool": pool}
    return RedisStorage(scheme + url, implementation="redispy", wrap_exceptions=True,
                        key_prefix=REDIS_KEY_PREFIX, **shared)
