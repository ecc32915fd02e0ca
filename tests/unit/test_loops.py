"""The one background-loop helper (`tidings.support.loops`): wake-ups, stopping, failures
and its metrics."""

from __future__ import annotations

import asyncio

import pytest

from tidings.support.loops import MAX_BACKOFF_S, Loop, backoff
from tidings.support.metrics import Metrics


def counted(metrics: Metrics, name: str, loop: str) -> float:
    return metrics.registry.get_sample_value(name, {"loop": loop}) or 0.0


async def eventually(check: object, timeout: float = 2.0) -> None:
    assert callable(check)
    for _ in range(int(timeout / 0.005)):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("not reached in time")


async def test_a_wake_during_a_pass_is_not_lost() -> None:
    in_pass, release = asyncio.Event(), asyncio.Event()
    passes = 0

    async def step() -> float:
        nonlocal passes
        passes += 1
        if passes == 1:
            in_pass.set()
            await release.wait()
        return 3600.0  # only a wake brings the next pass

    loop = Loop("test", step, interval_s=3600.0)
    loop.start()
    try:
        await in_pass.wait()
        loop.wake()  # while the first pass runs
        release.set()
        await eventually(lambda: passes == 2)
    finally:
        await loop.stop()


async def test_a_wake_cuts_the_wait_short() -> None:
    passes = 0

    async def step() -> float:
        nonlocal passes
        passes += 1
        return 3600.0

    loop = Loop("test", step, interval_s=3600.0)
    loop.start()
    try:
        await eventually(lambda: passes == 1)
        loop.wake()
        await eventually(lambda: passes == 2)
    finally:
        await loop.stop()


async def test_stop_lets_the_pass_in_hand_finish() -> None:
    in_pass, release = asyncio.Event(), asyncio.Event()
    finished = 0

    async def step() -> float:
        nonlocal finished
        in_pass.set()
        await release.wait()
        finished += 1
        return 0.0  # more would be due: only stopping ends the loop

    loop = Loop("test", step, interval_s=1.0)
    loop.start()
    await in_pass.wait()
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0.02)
    assert not stopping.done()  # waits for the pass
    release.set()
    await stopping
    assert finished == 1  # that pass, and no other
    assert not loop.running
    await loop.stop()  # stopping twice is harmless


async def test_cancel_on_stop_does_not_wait_for_the_pass() -> None:
    in_pass = asyncio.Event()

    async def step() -> float:
        in_pass.set()
        await asyncio.sleep(3600)
        return 1.0

    loop = Loop("test", step, interval_s=1.0, cancel_on_stop=True)
    loop.start()
    await in_pass.wait()
    await asyncio.wait_for(loop.stop(), 1.0)
    assert not loop.running


async def test_a_failed_pass_backs_off_and_the_loop_goes_on() -> None:
    metrics = Metrics()
    passes = 0

    async def step() -> float:
        nonlocal passes
        passes += 1
        if passes <= 2:
            raise RuntimeError("the database hiccups")
        return 3600.0

    loop = Loop("test", step, interval_s=0.01, metrics=metrics)
    loop.start()
    try:
        await eventually(lambda: passes == 3)
        await asyncio.sleep(0.05)
        assert passes == 3  # after a good pass, the step's own wait again
        assert counted(metrics, "tidings_loop_errors_total", "test") == 2
        assert counted(metrics, "tidings_loop_passes_total", "test") == 3
    finally:
        await loop.stop()


def test_the_backoff_starts_at_the_interval_and_doubles_up_to_its_bound() -> None:
    assert [backoff(1.0, n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert backoff(1.0, 50) == MAX_BACKOFF_S
    # A loop that waits longer than the bound anyway (daily maintenance) waits its interval.
    assert backoff(86_400.0, 1) == backoff(86_400.0, 5) == 86_400.0


@pytest.mark.parametrize("loop", ["worker", "scheduler", "maintenance"])
def test_every_loop_has_its_series_from_the_start(loop: str) -> None:
    metrics = Metrics()
    assert metrics.registry.get_sample_value("tidings_loop_passes_total", {"loop": loop}) == 0
    assert metrics.registry.get_sample_value("tidings_loop_errors_total", {"loop": loop}) == 0
