"""The control messages of a single process: a raise wakes this process's loops, nothing
else; an invalidation has no other process to reach (the raiser dropped its own entry)."""

from __future__ import annotations

from datetime import datetime

from tidings.wakeup import Waiters


class LocalSignal:
    """One node, no Redis, no PostgreSQL (or nothing else to wake): the waiters are
    called directly."""

    def __init__(self, waiters: Waiters) -> None:
        self._waiters = waiters

    def queued(self) -> None:
        self._waiters.wake_queued()

    def scheduled(self, due: datetime) -> None:
        self._waiters.wake_scheduled(due)

    def escalated(self, due: datetime) -> None:
        self._waiters.wake_escalated(due)

    def invalidate(self, scope: str, key: str) -> None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
