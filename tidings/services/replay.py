"""Reads replay chunks for many sockets together: one statement per batch of asks.

When many clients come back at once (a node restarted, a network blip) each asks for what
it missed; answered one by one, that is a transaction and two queries per socket, and the
storm is bounded by database round trips. Here an ask waits at most `window` seconds (or
until `max_batch` asks are waiting) and the whole batch is answered from one transaction:
one statement for the notifications of every ask, one for their deliveries.

At most `parallel` batches run at once; asks arriving meanwhile form the next batch, so
the batches grow by themselves when the database is slow. A batch that fails fails each of
its asks with the same exception, which each caller answers as it would its own failure.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from datetime import datetime

from tidings.crypto.cipher import FieldCipher
from tidings.domain.notification import Notification
from tidings.store import notifications as notification_store
from tidings.store.database import Database
from tidings.store.replay import ReplayAsk, in_app_after_many

log = logging.getLogger(__name__)

WINDOW_S = 0.002
MAX_BATCH = 400
PARALLEL = 2

Waiting = tuple[ReplayAsk, "asyncio.Future[list[Notification]]"]


class ReplayReader:
    """Coalesces `read` calls into batched reads. Created outside any event loop; the
    loop is taken from the first `read`."""

    def __init__(self, db: Database, chunk: int, *, cipher: FieldCipher | None = None,
                 window: float = WINDOW_S, max_batch: int = MAX_BATCH,
                 parallel: int = PARALLEL) -> None:
        self._db = db
        self._cipher = cipher
        self.chunk = chunk
        self._window = window
        self._max_batch = max_batch
        self._parallel = parallel
        self._waiting: list[Waiting] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.batches = 0  # statements' worth of batches run (for tests and metrics)

    async def read(self, user_id: str, after: tuple[datetime, str],
                   until: datetime) -> list[Notification]:
        """At most `chunk` of the user's in-app notifications after `after` (a
        (visible_at, id) cursor) and visible by `until`, oldest first, with deliveries."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Notification]] = loop.create_future()
        self._waiting.append((ReplayAsk(user_id, after, until), future))
        if len(self._waiting) >= self._max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._window, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting and len(self._running) < self._parallel:
            batch = self._waiting[:self._max_batch]
            del self._waiting[:self._max_batch]
            live = [(ask, future) for ask, future in batch if not future.done()]
            if not live:
                continue  # every asker went away meanwhile
            task = asyncio.ensure_future(self._answer(live))
            self._running.add(task)
            task.add_done_callback(functools.partial(self._finished, live))

    def _finished(self, batch: Sequence[Waiting], task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        for _, future in batch:
            if not future.done():  # the batch itself was cancelled (shutdown): so are they
                future.cancel()
        if self._waiting:
            self._flush()  # what gathered while the database was busy goes now

    async def _answer(self, batch: Sequence[Waiting]) -> None:
        try:
            chunks = await self._read([ask for ask, _ in batch])
            for (_, future), chunk in zip(batch, chunks, strict=True):
                if not future.done():  # a caller cancelled (its socket left) takes nothing
                    future.set_result(chunk)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)

    async def _read(self, asks: Sequence[ReplayAsk]) -> list[list[Notification]]:
        self.batches += 1
        async with self._db.snapshot() as conn:
            chunks = await in_app_after_many(conn, asks, self.chunk, cipher=self._cipher)
            flat = await notification_store.with_deliveries(
                conn, [note for chunk in chunks for note in chunk])
        # Deliveries were read for all asks at once; each ask gets its own back, in order.
        answered: list[list[Notification]] = []
        start = 0
        for chunk in chunks:
            answered.append(flat[start:start + len(chunk)])
            start += len(chunk)
        log.debug("replay batch: %d asks, %d notifications", len(asks), start)
        return answered
