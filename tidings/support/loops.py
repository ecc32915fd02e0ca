"""The one way a background loop runs here: passes of a step, a wait between them that a
wake cuts short, a backoff after a failed pass, and a count of passes and failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from tidings.support.metrics import Metrics

log = logging.getLogger(__name__)

# A failing pass waits `interval_s` first (what every loop did before), then twice as long
# at each failure in a row, up to this bound (or `interval_s`, when that is longer): a
# database that is down for a while is not asked every poll interval, and is noticed
# within a minute of coming back. One good pass starts the count again.
MAX_BACKOFF_S = 60.0

Step = Callable[[], Awaitable[float]]


def backoff(interval_s: float, failures: int, cap_s: float = MAX_BACKOFF_S) -> float:
    """How long to wait after the `failures`-th failed pass in a row (1 for the first)."""
    return min(interval_s * 2.0 ** max(0, failures - 1), max(interval_s, cap_s))


class Loop:
    """Runs `step` in passes until stopped. The step returns how long to wait before the
    next pass (0 or less: at once, more is waiting); `wake` cuts a wait short, and a wake
    that comes during a pass is kept for after it. A pass that raises is logged, counted
    and followed by a `backoff` wait; the loop goes on.

    `stop` lets a pass in hand finish (and settle whatever it holds) unless the loop was
    made with `cancel_on_stop`, for steps that leave nothing half done when cancelled."""

    def __init__(self, name: str, step: Step, *, interval_s: float,
                 metrics: Metrics | None = None, cancel_on_stop: bool = False,
                 max_backoff_s: float = MAX_BACKOFF_S, failure: str | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.name = name
        self._step = step
        self._interval_s = interval_s
        self._cancel_on_stop = cancel_on_stop
        self._max_backoff_s = max_backoff_s
        self._failure = failure or f"{name} pass failed"
        self._log = logger or log  # the owner's, so its failures read as before
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._passes = metrics.loop_passes.labels(loop=name) if metrics else None
        self._errors = metrics.loop_errors.labels(loop=name) if metrics else None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Run the next pass now rather than at the end of the wait."""
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name=f"tidings-{self.name}")

    async def stop(self) -> None:
        """No pass after this one; returns when the loop has ended. Harmless twice."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        if self._cancel_on_stop:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()  # before the pass: a wake during it is not lost
            try:
                delay = await self._step()
                failures = 0
            except Exception:
                # A database hiccup must not end the loop: what is due waits for a pass.
                self._log.exception(self._failure)
                failures += 1
                if self._errors is not None:
                    self._errors.inc()
                delay = backoff(self._interval_s, failures, self._max_backoff_s)
            if self._passes is not None:
                self._passes.inc()
            if self._stopping:
                break
            if delay <= 0:
                await asyncio.sleep(0)  # more is due: no wait, but let the others run
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
