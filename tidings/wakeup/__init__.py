"""The queue's wake-up across processes (`services/queue_signal.py` says what a raise
means and promises): in process for a single node (`local.py`), over Redis when REDIS_URL
is set (`redis.py`), over PostgreSQL's LISTEN/NOTIFY on a PostgreSQL database without Redis
(`postgres.py`), so that `tidings worker` processes wake at a create instead of polling.
The composition root picks one and says what it wakes (`Waiters`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Waiters:
    """The waiting side in one process: the wake-ups of the queue's loops that run here
    (the delivery worker's, the scheduler's); none where a loop does not run."""

    queued: Sequence[Callable[[], None]] = ()
    scheduled: Sequence[Callable[[datetime], None]] = ()

    def wake_queued(self) -> None:
        for wake in self.queued:
            wake()

    def wake_scheduled(self, due: datetime) -> None:
        for wake in self.scheduled:
            wake(due)


class Signal(Protocol):
    """A `QueueSignal` with its life cycle, as the composition root holds it."""

    def queued(self) -> None: ...

    def scheduled(self, due: datetime) -> None: ...

    async def start(self) -> None:
        """Connects (waiting a moment at most); one that cannot keeps trying in the
        background: the loops poll meanwhile."""

    async def close(self) -> None: ...
