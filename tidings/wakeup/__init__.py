"""The control messages between processes: the queue's wake-up (`services/queue_signal.py`
says what a raise means and promises) and the invalidation of cached rows
(`services/invalidation.py`): in process for a single node (`local.py`), over Redis when
REDIS_URL is set (`redis.py`), over PostgreSQL's LISTEN/NOTIFY on a PostgreSQL database
without Redis (`postgres.py`), so that `tidings worker` processes wake at a create instead
of polling and no node goes on using a preference changed on another. The composition
root picks one and says what it wakes and drops (`Waiters`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Waiters:
    """The receiving side in one process: the wake-ups of the queue's loops that run here
    (the delivery worker's, the scheduler's; none where a loop does not run), and the
    caches here, told `(scope, key)` by another process, or to drop everything (`lost`)
    when the control connection comes back after a break that may have lost messages."""

    queued: Sequence[Callable[[], None]] = ()
    scheduled: Sequence[Callable[[datetime], None]] = ()
    escalated: Sequence[Callable[[datetime], None]] = ()
    invalidated: Sequence[Callable[[str, str], None]] = ()
    lost: Sequence[Callable[[], None]] = ()

    def wake_queued(self) -> None:
        for wake in self.queued:
            wake()

    def wake_scheduled(self, due: datetime) -> None:
        for wake in self.scheduled:
            wake(due)

    def wake_escalated(self, due: datetime) -> None:
        for wake in self.escalated:
            wake(due)

    def invalidate(self, scope: str, key: str) -> None:
        for drop in self.invalidated:
            drop(scope, key)

    def drop_all(self) -> None:
        for drop in self.lost:
            drop()


class Signal(Protocol):
    """A `QueueSignal` and an `Invalidation` with their life cycle, as the composition
    root holds them."""

    def queued(self) -> None: ...

    def scheduled(self, due: datetime) -> None: ...

    def escalated(self, due: datetime) -> None: ...

    def invalidate(self, scope: str, key: str) -> None: ...

    async def start(self) -> None:
        """Connects (waiting a moment at most); one that cannot keeps trying in the
        background: the loops poll meanwhile."""

    async def close(self) -> None: ...
