"""Group commit for concurrent writes.

While one batch is being written, newly submitted items queue up, and the next batch takes
them all: one transaction (one BEGIN, one COMMIT, one fsync on PostgreSQL) for many
requests. There is no timer: a lone request is written at once, so batching adds no
latency at low load and takes effect by itself under load. With `in_flight` above one,
that many batches are written at once (each its own transaction), and their callers still
hear in submission order.

A batch is bounded in items and, with a `weight`, in the work they carry (a create to
10,000 users is 10,000 rows, not one): it takes items in order while their total weight
stays within `max_weight`; an item heavier than that alone still goes, alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# One result per item, in order: a value, or the exception that item failed with.
BatchHandler = Callable[[list[T]], Awaitable[list[R | BaseException]]]


class Batcher(Generic[T, R]):
    def __init__(self, handler: BatchHandler[T, R], max_batch: int,
                 weight: Callable[[T], int] | None = None, max_weight: int = 0,
                 in_flight: int = 1) -> None:
        self._handler = handler
        self._max = max_batch
        self._weight = weight
        self._max_weight = max_weight
        # Batches written at once. One keeps a database that writes alone (SQLite) from
        # queueing transactions on itself; two let PostgreSQL take the next batch while
        # the previous one's commit is still being flushed.
        self._max_in_flight = max(1, in_flight)
        self._in_flight = 0
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        # Set when the latest batch's callers have their results: the next batch hands
        # out its own only after, so callers hear in the order they submitted (a user's
        # notifications are emitted in the order they were created).
        self._last_answered: asyncio.Future[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._start_batches()
        # If the caller goes away (client disconnect), the item is still written: a
        # notification accepted for writing is never half-done.
        return await asyncio.shield(future)

    def _start_batches(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue and self._in_flight < self._max_in_flight:
            size = self._next_size()
            batch = self._queue[:size]
            del self._queue[:size]
            answered: asyncio.Future[None] = loop.create_future()
            previous, self._last_answered = self._last_answered, answered
            self._in_flight += 1
            task = asyncio.ensure_future(self._write(batch, previous, answered))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _write(self, batch: list[tuple[T, asyncio.Future[R]]],
                     previous: asyncio.Future[None] | None,
                     answered: asyncio.Future[None]) -> None:
        try:
            try:
                results = await self._handler([item for item, _ in batch])
            except BaseException as exc:  # the whole batch failed: each caller hears why
                results = [exc] * len(batch)
            if previous is not None and not previous.done():
                await asyncio.shield(previous)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            if not answered.done():
                answered.set_result(None)
            self._in_flight -= 1
            self._start_batches()

    def _next_size(self) -> int:
        """How many waiting items the next batch takes (at least one)."""
        if self._weight is None:
            return min(self._max, len(self._queue))
        total = size = 0
        for item, _ in self._queue[: self._max]:
            total += self._weight(item)
            if size and total > self._max_weight:
                break
            size += 1
        return size
