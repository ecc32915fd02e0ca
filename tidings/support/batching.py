"""Group commit for concurrent writes.

While one batch is being written, newly submitted items queue up, and the next batch takes
them all: one transaction (one BEGIN, one COMMIT, one fsync on PostgreSQL) for many
requests. There is no timer: a lone request is written at once, so batching adds no
latency at low load and takes effect by itself under load.

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
                 weight: Callable[[T], int] | None = None, max_weight: int = 0) -> None:
        self._handler = handler
        self._max = max_batch
        self._weight = weight
        self._max_weight = max_weight
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._draining is None:
            self._draining = asyncio.ensure_future(self._drain())
        # If the caller goes away (client disconnect), the item is still written: a
        # notification accepted for writing is never half-done.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._queue:
                size = self._next_size()
                batch = self._queue[:size]
                del self._queue[:size]
                try:
                    results = await self._handler([item for item, _ in batch])
                except BaseException as exc:  # the whole batch failed: each caller hears why
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._draining = None

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
