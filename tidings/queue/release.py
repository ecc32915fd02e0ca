"""Releases scheduled in-app notifications when they fall due.

Sleeps until the earliest due delivery (at most `interval`), and is woken early when a
notification is scheduled sooner than that. The database is the queue: a crash or restart
loses nothing, the next pass picks up whatever is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from tidings.crypto.cipher import FieldCipher
from tidings.domain.model import utcnow
from tidings.queue.ports import Sockets
from tidings.store import notifications as store
from tidings.store.database import Database

log = logging.getLogger(__name__)


class DueScheduler:
    """Owns the in-app deliveries that wait for their time: claims the due ones, marks
    them sent and hands them to the fan-out, in due order."""

    def __init__(self, db: Database, fanout: Sockets, *, interval_s: float,
                 batch_size: int, cipher: FieldCipher | None = None) -> None:
        self._db = db
        self._cipher = cipher  # opens the parts sealed at rest
        self._fanout = fanout
        self._interval = interval_s
        self._batch = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self, _due: datetime | None = None) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tidings-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def release_due(self) -> int:
        """Emit the in-app notifications whose time has come; returns how many."""
        now = utcnow()
        async with self._db.begin() as conn:
            ids = await store.claim_due_in_app(conn, now, self._batch)
            due = await store.with_deliveries(
                conn, await store.get_many(conn, ids, cipher=self._cipher))
        due.sort(key=lambda notification: notification.position)
        await self._fanout.notify(due)
        return len(due)

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before the pass: a wake during it is not lost
            try:
                if await self.release_due() >= self._batch:
                    continue  # more are due: no sleep
                delay = await self._delay()
            except Exception:
                # A database hiccup must not end the loop; the due rows wait for the next pass.
                log.exception("releasing scheduled notifications failed")
                delay = self._interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _delay(self) -> float:
        async with self._db.begin() as conn:
            due = await store.next_due_in_app(conn)
        if due is None:
            return self._interval
        return min(self._interval, max(0.0, (due - utcnow()).total_seconds()))
