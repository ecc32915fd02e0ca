"""The latest version of each template key, as creates name them: a create with a
template asks the database nothing for it once cached (and nothing for a key that does not
exist, which is remembered as absent too).

Staleness as for the other caches (`preference_cache.py`): the process that saves or
deletes a template drops its entry after the commit, the others when the invalidation
(scope `templates`, the key) arrives, everything when their control connection comes back
after a break; a message lost without a break is bounded by an entry's life.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tidings.domain.template import Template
from tidings.store import templates as store
from tidings.store.database import Database
from tidings.support.metrics import Metrics
from tidings.support.ttl_cache import TtlCache

SCOPE = "templates"
TTL_S = 30.0
CAPACITY = 2_000  # keys: far more than a deployment's templates, bounded all the same


class TemplateCache:
    def __init__(self, db: Database, metrics: Metrics, *, ttl_s: float = TTL_S,
                 capacity: int = CAPACITY, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._entries: TtlCache[str, Template | None] = TtlCache(
            capacity=capacity, ttl_s=ttl_s, clock=clock,
            hits=metrics.cache_hits.labels(cache=SCOPE),
            misses=metrics.cache_misses.labels(cache=SCOPE))

    async def latest(self, key: str) -> Template | None:
        """The key's latest version, or None when there is no such template."""
        ticket = self._entries.ticket()
        found, _missed = self._entries.get_many([key])
        if key in found:
            return found[key]
        async with self._db.begin() as conn:
            template = await store.get(conn, key)
        self._entries.put_many({key: template}, ticket)
        return template

    def forget(self, key: str) -> None:
        self._entries.drop(key)

    def forget_all(self) -> None:
        self._entries.clear()

    def invalidated(self, scope: str, key: str) -> None:
        """A message from another process (`wakeup.Waiters`)."""
        if scope == SCOPE:
            self._entries.drop(key)
