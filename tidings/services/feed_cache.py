"""Which channels have a team feed, as every create asks it: the whole set in one cached
entry, so a create asks the database nothing once cached (most channels have none).

Staleness as for the other caches (`preference_cache.py`): the process that sets or
removes a feed drops the entry after its commit, the others when the invalidation (scope
`feeds`) arrives, everything when their control connection comes back after a break.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tidings.store import feeds as store
from tidings.store.database import Database
from tidings.support.metrics import Metrics
from tidings.support.ttl_cache import TtlCache

SCOPE = "feeds"
TTL_S = 30.0
_ALL = "*"


class FeedCache:
    def __init__(self, db: Database, metrics: Metrics, *, ttl_s: float = TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._entries: TtlCache[str, frozenset[str]] = TtlCache(
            capacity=1, ttl_s=ttl_s, clock=clock,
            hits=metrics.cache_hits.labels(cache=SCOPE),
            misses=metrics.cache_misses.labels(cache=SCOPE))

    async def channels(self) -> frozenset[str]:
        """The channels that have a feed."""
        ticket = self._entries.ticket()
        found, _missed = self._entries.get_many([_ALL])
        if _ALL in found:
            return found[_ALL]
        async with self._db.begin() as conn:
            channels = frozenset(await store.channels(conn))
        self._entries.put_many({_ALL: channels}, ticket)
        return channels

    def forget(self) -> None:
        self._entries.clear()

    def invalidated(self, scope: str, _key: str) -> None:
        if scope == SCOPE:
            self._entries.clear()
