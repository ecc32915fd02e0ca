"""The group-commit batcher: order, isolation of failures, and concurrency."""

from __future__ import annotations

import asyncio

import pytest

from tidings.support.batching import Batcher


class Recorder:
    """A batch handler that records the batches it saw and can be held open."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.entered = asyncio.Event()

    async def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        self.entered.set()
        await self.release.wait()
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


async def test_a_lone_item_is_written_at_once() -> None:
    handler = Recorder()
    assert await Batcher(handler, 10).submit(1) == 10
    assert handler.batches == [[1]]


async def test_items_arriving_during_a_write_share_the_next_batch_in_order() -> None:
    handler = Recorder()
    batcher = Batcher(handler, 10)
    handler.release.clear()
    first = asyncio.ensure_future(batcher.submit(1))
    await handler.entered.wait()
    rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(2, 6)]
    await asyncio.sleep(0)
    handler.release.set()
    assert await asyncio.gather(first, *rest) == [10, 20, 30, 40, 50]
    assert handler.batches == [[1], [2, 3, 4, 5]]


async def test_batches_are_capped() -> None:
    handler = Recorder()
    batcher = Batcher(handler, 2)
    handler.release.clear()
    first = asyncio.ensure_future(batcher.submit(0))
    await handler.entered.wait()
    rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    handler.release.set()
    await asyncio.gather(first, *rest)
    assert handler.batches == [[0], [1, 2], [3, 4], [5]]


async def test_one_failing_item_fails_only_its_own_caller() -> None:
    handler = Recorder()
    batcher = Batcher(handler, 10)
    handler.release.clear()
    first = asyncio.ensure_future(batcher.submit(1))
    await handler.entered.wait()
    good, bad = asyncio.ensure_future(batcher.submit(2)), asyncio.ensure_future(batcher.submit(-1))
    handler.release.set()
    assert await first == 10 and await good == 20
    with pytest.raises(ValueError, match="bad -1"):
        await bad


async def test_a_handler_that_raises_fails_every_caller_of_that_batch_only() -> None:
    calls = 0

    async def flaky(items: list[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database went away")
        return items

    batcher = Batcher(flaky, 10)
    with pytest.raises(RuntimeError):
        await batcher.submit(1)
    assert await batcher.submit(2) == 2  # the batcher itself recovers


async def test_a_caller_that_goes_away_does_not_cancel_the_write() -> None:
    handler = Recorder()
    batcher = Batcher(handler, 10)
    handler.release.clear()
    caller = asyncio.ensure_future(batcher.submit(7))
    await handler.entered.wait()
    caller.cancel()
    handler.release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert await batcher.submit(8) == 80
    assert handler.batches == [[7], [8]]


async def test_batches_are_capped_by_weight_too_and_a_heavy_item_goes_alone() -> None:
    handler = Recorder()
    batcher = Batcher(handler, 10, weight=lambda item: item, max_weight=10)
    handler.release.clear()
    first = asyncio.ensure_future(batcher.submit(1))
    await handler.entered.wait()
    rest = [asyncio.ensure_future(batcher.submit(i)) for i in (4, 5, 12, 3, 3, 3, 2)]
    await asyncio.sleep(0)
    handler.release.set()
    await asyncio.gather(first, *rest)
    # 4 + 5 fit in 10; 12 alone is over the weight and still goes (alone); 3 + 3 + 3.
    assert handler.batches == [[1], [4, 5], [12], [3, 3, 3], [2]]
