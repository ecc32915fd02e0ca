"""Releases scheduled in-app notifications when they fall due.

Sleeps until the earliest due delivery (at most `interval`), and is woken early when a
notification is scheduled sooner than that. The database is the queue: a crash or restart
loses nothing, the next pass picks up whatever is due.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from tidings.domain.model import utcnow
from tidings.services.notifications import NotificationService

log = logging.getLogger(__name__)


class DueScheduler:
    def __init__(self, notifications: NotificationService, *, interval_s: float,
                 batch_size: int) -> None:
        self._notifications = notifications
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
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before the pass: a wake during it is not lost
            try:
                released = await self._notifications.release_due(self._batch)
                if released >= self._batch:
                    continue  # more are due: no sleep
                delay = await self._delay()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A database hiccup must not end the loop; the due rows wait for the next pass.
                log.exception("releasing scheduled notifications failed")
                delay = self._interval
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def _delay(self) -> float:
        due = await self._notifications.next_due()
        if due is None:
            return self._interval
        return min(self._interval, max(0.0, (due - utcnow()).total_seconds()))
