"""Releases scheduled in-app notifications when they fall due.

Sleeps until the earliest due delivery (at most `interval`), and is woken early when a
notification is scheduled sooner than that. The database is the queue: a crash or restart
loses nothing, the next pass picks up whatever is due. The claim is the delivery queue's
(`store.queue.claim`), on its in-app lane: the rows are marked sent in the claim's own
transaction, as the fan-out that follows has nothing to settle.
"""

from __future__ import annotations

import logging
from datetime import datetime

from tidings.crypto.cipher import FieldCipher
from tidings.domain.model import utcnow
from tidings.queue.ports import Sockets
from tidings.store import notifications as notification_store
from tidings.store import queue as store
from tidings.store.database import Database
from tidings.support.loops import Loop
from tidings.support.metrics import Metrics

log = logging.getLogger(__name__)


class DueScheduler:
    """Owns the in-app deliveries that wait for their time: claims the due ones, marks
    them sent and hands them to the fan-out, in due order."""

    def __init__(self, db: Database, fanout: Sockets, *, interval_s: float,
                 batch_size: int, cipher: FieldCipher | None = None,
                 metrics: Metrics | None = None) -> None:
        self._db = db
        self._cipher = cipher  # opens the parts sealed at rest
        self._fanout = fanout
        self._interval = interval_s
        self._batch = batch_size
        # Stopping cancels a pass in hand: its claim either committed (the rows are sent
        # and in the inbox, which replay serves) or rolled back (due at the next start).
        self._loop = Loop("scheduler", self._pass, interval_s=interval_s, metrics=metrics,
                          cancel_on_stop=True, logger=log,
                          failure="releasing scheduled notifications failed")

    def wake(self, _due: datetime | None = None) -> None:
        self._loop.wake()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def release_due(self) -> int:
        """Emit the in-app notifications whose time has come; returns how many."""
        now = utcnow()
        async with self._db.begin() as conn:
            claimed = await store.claim(conn, now, self._batch, lane=store.IN_APP)
            due = await notification_store.with_deliveries(
                conn, await notification_store.get_many(
                    conn, [c.notification_id for c in claimed], cipher=self._cipher))
        # One that expired while it waited is not shown (a canceled one's row was
        # skipped, never claimed).
        due = [notification for notification in due if notification.live_at(now)]
        due.sort(key=lambda notification: notification.position)
        await self._fanout.notify(due)
        return len(due)

    async def _pass(self) -> float:
        """One pass of the loop; returns how long to wait before the next one."""
        if await self.release_due() >= self._batch:
            return 0.0  # more are due: no sleep
        async with self._db.begin() as conn:
            due = await store.next_due(conn, lane=store.IN_APP)
        if due is None:
            return self._interval
        return min(self._interval, max(0.0, (due - utcnow()).total_seconds()))
