"""The types catalogue as every process reads it: the whole catalogue in one cached
entry, so that a create (or an email being sent) asks the database nothing once cached,
whether its type is in the catalogue or not (the common case: nothing to find).

Staleness as for the preferences' cache (`preference_cache.py`): the process that writes
a type drops the entry after its commit, the others when the invalidation (scope
`types`) arrives, everything when their control connection comes back after a break;
a message lost without a break is bounded by the entry's life.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from tidings.domain.catalogue import NotificationType
from tidings.store import catalogue as store
from tidings.store.database import Database
from tidings.support.metrics import Metrics
from tidings.support.ttl_cache import TtlCache

SCOPE = "types"
# How long a node may go on using a type another node changed if the message was lost
# without the connection breaking: admins change types by hand and rarely.
TTL_S = 30.0
_ALL = "*"  # the one entry's key: the catalogue is cached whole

Catalogue = Mapping[tuple[str, str], NotificationType]


class TypeCache:
    """The whole catalogue by (channel, type), read in a transaction of its own."""

    def __init__(self, db: Database, metrics: Metrics, *, ttl_s: float = TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._entries: TtlCache[str, Catalogue] = TtlCache(
            capacity=1, ttl_s=ttl_s, clock=clock,
            hits=metrics.cache_hits.labels(cache=SCOPE),
            misses=metrics.cache_misses.labels(cache=SCOPE))

    async def catalogue(self) -> Catalogue:
        ticket = self._entries.ticket()
        found, _missed = self._entries.get_many([_ALL])
        if _ALL in found:
            return found[_ALL]
        async with self._db.begin() as conn:
            items = await store.every(conn)
        read: Catalogue = MappingProxyType({(item.channel, item.type): item
                                            for item in items})
        self._entries.put_many({_ALL: read}, ticket)
        return read

    async def find(self, channel: str, type_: str) -> NotificationType | None:
        return (await self.catalogue()).get((channel, type_))

    async def required(self, channel: str, type_: str) -> bool:
        """Whether the type goes through opt-outs (its emails offer no one-click
        unsubscribe: it would change nothing)."""
        found = await self.find(channel, type_)
        return found is not None and found.spec.required

    def forget(self) -> None:
        self._entries.clear()

    def invalidated(self, scope: str, _key: str) -> None:
        """A message from another process (`wakeup.Waiters`): any type changed."""
        if scope == SCOPE:
            self._entries.clear()
