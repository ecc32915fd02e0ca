"""The queue's wake-up, as the rules raise it: "deliveries were written or became due"
(the delivery workers look now), "a scheduled in-app notification falls due at T" (the
scheduler looks by then) and "escalation steps fall due from T" (their loop looks by then).

The database is the queue: a raise only shortens the wait of a loop that would find the
work at its next poll anyway (`SCHEDULER_INTERVAL`). So a raise is cheap and never blocks
the caller (close raises coalesce into one message), and a lost one costs at most a poll
interval, never a delivery. Raise after the commit that wrote the work, never inside it.

Implemented in `tidings/wakeup/` (in process, over Redis, or over PostgreSQL's
LISTEN/NOTIFY), chosen by the composition root, which also says what a raise wakes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class QueueSignal(Protocol):
    """The raising side; the waiting side is the queue's loops (`wakeup.Waiters`)."""

    def queued(self) -> None:
        """Deliveries were written or made due: every delivery worker, in any process,
        looks now."""

    def scheduled(self, due: datetime) -> None:
        """A scheduled in-app notification falls due at `due`: this process's scheduler
        wakes by then (the scheduler of any node releases it at the latest at its next
        poll)."""

    def escalated(self, due: datetime) -> None:
        """Escalation steps were written, the first due at `due`: this process's
        escalation loop wakes if it would otherwise sleep past it (every process's loop
        finds it at its next poll anyway, so nothing crosses between processes)."""
