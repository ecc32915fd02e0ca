"""Each user's preference rows, cached in process, so that a create for a user without
preference rows (the common case) costs no lookup.

Per user, every row (not per (channel, type)): one entry answers every create to that
user, and one invalidation (by user id) drops it all. The rule that picks among the rows,
most specific first, stays `domain/preference.py`'s, applied to the cached rows exactly
as to those a query returns. "No rows" is cached too: it is most entries.

Staleness: this process drops a user's entry after the commit of any change it makes;
the other processes drop it when the invalidation message arrives, and all of it when
their control connection comes back after a break. A message lost without a break (a
publisher cut off while the subscribers stay connected) is bounded by each entry's life.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tidings.domain.preference import Preference
from tidings.support.metrics import Metrics
from tidings.support.ttl_cache import TtlCache

SCOPE = "preferences"
# The life of an entry: how long a node may go on applying a preference another node
# changed, if that change's message was lost without the connection breaking (a break
# drops the whole cache). People change preferences by hand and rarely; half a minute of
# such staleness on a rare loss is acceptable, while it still lets a user who is notified
# every few seconds (the load the cache is for) hit nearly always.
TTL_S = 30.0
# Users, counting those without rows (~0.3 KB each with the key and the LRU's links):
# ~15 MB at most, the recipients of the last several seconds at thousands of creates/s.
CAPACITY = 50_000
# A user with more rows than this is not cached (read each time): an entry's size stays
# small whatever one user stores.
MAX_ROWS = 32


class PreferenceCache:
    """Maps a user id to all of their preference rows (empty: none); see the module
    docstring for what keeps it fresh."""

    def __init__(self, metrics: Metrics, *, ttl_s: float = TTL_S, capacity: int = CAPACITY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.entries: TtlCache[str, tuple[Preference, ...]] = TtlCache(
            capacity=capacity, ttl_s=ttl_s, clock=clock,
            hits=metrics.cache_hits.labels(cache=SCOPE),
            misses=metrics.cache_misses.labels(cache=SCOPE))

    def forget(self, user_id: str) -> None:
        self.entries.drop(user_id)

    def invalidated(self, scope: str, key: str) -> None:
        """A message from another process (`wakeup.Waiters`)."""
        if scope == SCOPE:
            self.entries.drop(key)

    def forget_all(self) -> None:
        """The control connection came back after a break: messages may have been lost."""
        self.entries.clear()
