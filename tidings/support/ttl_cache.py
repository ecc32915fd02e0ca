"""A bounded in-process cache with a life per entry, for values the database holds and
other processes may change (the owner drops an entry when told, and every entry ends by
itself in case the telling was lost).

Reads race writes: a value read from the database before a change committed must not be
stored after the change's invalidation arrived, or it would stay stale for a whole life.
So a filler takes a `ticket()` before its read and `put`s with it; a `drop` or `clear`
after the ticket was taken turns that `put` into nothing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from prometheus_client import Counter

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Least recently used first out beyond `capacity` entries; an entry older than
    `ttl_s` (on `clock`, monotonic seconds) is a miss. Not thread-safe: one event loop."""

    def __init__(self, *, capacity: int, ttl_s: float, hits: Counter, misses: Counter,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._capacity = capacity
        self._ttl_s = ttl_s
        self._clock = clock
        self._hits = hits
        self._misses = misses
        # Bumped by every drop and clear: a ticket older than the last one is void.
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def ticket(self) -> int:
        """Take before reading what will be `put`."""
        return self._generation

    def get_many(self, keys: list[K]) -> tuple[dict[K, V], list[K]]:
        """The live entries among `keys`, and the keys missed (in their order)."""
        found: dict[K, V] = {}
        missed: list[K] = []
        entries, now = self._entries, self._clock()
        for key in keys:
            entry = entries.get(key)
            if entry is None:
                missed.append(key)
            elif now - entry[0] >= self._ttl_s:
                del entries[key]
                missed.append(key)
            else:
                entries.move_to_end(key)
                found[key] = entry[1]
        if found:
            self._hits.inc(len(found))
        if missed:
            self._misses.inc(len(missed))
        return found, missed

    def put_many(self, values: dict[K, V], ticket: int) -> None:
        """Store what was read after `ticket` was taken, unless something was dropped
        since (the read may predate that change)."""
        if ticket != self._generation:
            return
        entries, now = self._entries, self._clock()
        for key, value in values.items():
            entries[key] = (now, value)
            entries.move_to_end(key)
        while len(entries) > self._capacity:
            entries.popitem(last=False)

    def drop(self, key: K) -> None:
        self._generation += 1
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
