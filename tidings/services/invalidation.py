"""Telling the other processes that something they may cache changed: "drop what you
hold of `key` under `scope`" (scope `preferences`: a user id).

Raise it after the commit that changed the rows, never inside the transaction: a process
that reads between the two must not cache the old rows after the message. The raising
process dropped its own entry already (it owns the cache); the message reaches the others.
Like the queue's wake-up it never blocks the caller, and a lost message is bounded by the
life of a cache entry, not forever (`services/preference_cache.py`).

Implemented in `tidings/wakeup/` alongside the wake-up (in process: nothing to tell;
over Redis on `{REDIS_PREFIX}:ctl`; over PostgreSQL's LISTEN/NOTIFY), chosen by the
composition root, which also says which caches a message drops (`wakeup.Waiters`).
"""

from __future__ import annotations

from typing import Protocol


class Invalidation(Protocol):
    """The raising side; the receiving side is each process's caches."""

    def invalidate(self, scope: str, key: str) -> None:
        """Every other process drops what it caches of `key` under `scope`."""
