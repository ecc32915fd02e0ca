"""A wake-up that also crosses processes, through a `Relay` (Redis pub/sub, PostgreSQL
LISTEN/NOTIFY): a raise wakes this process's waiters at once, and one message goes out
for each burst of raises, from a task of its own (a create never waits for it).
Invalidations ride the same connection and task: each distinct (scope, key) raised during
a send goes out once with the next.

What crosses is "deliveries were queued" only: a scheduled in-app notification wakes this
process's scheduler, and the others find it at their next poll, as before. A message that
could not go, or that arrived while a process was not listening, is lost: the workers
find the work at their next poll. A process that listens again after a break looks once
at once, for what it may have missed, and drops every cached entry (`Waiters.lost`): an
invalidation may have been missed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from tidings.wakeup import Waiters

log = logging.getLogger(__name__)

# How long `start` waits for the first connection, and a send for its answer: a relay that
# is slow or down costs the other processes a poll, never a create its latency.
START_WAIT_S = 2.0
SEND_TIMEOUT_S = 1.0
RECONNECT_S = 1.0


class Relay(Protocol):
    """One connection that carries the control messages between processes: "deliveries
    were queued" and "drop what you cache of (scope, key)"."""

    async def open(self) -> None:
        """Connect and subscribe; raises when it cannot."""

    async def listen(self, heard: Callable[[], None],
                     invalidated: Callable[[str, str], None]) -> None:
        """Call `heard` for each wake-up another process sent, `invalidated` for each
        invalidation, until the connection fails (raising)."""

    async def send(self) -> None:
        """One wake-up to every other process; raises when it could not go."""

    async def send_invalidations(self, items: Sequence[tuple[str, str]]) -> None:
        """Each (scope, key) to every other process; raises when they could not go."""

    async def close(self) -> None:
        """Drop the connection, if any (opened again by `open`)."""


class RelayedSignal:
    """Coalesces raises: while one message is on its way, further raises become a single
    next one. See the module docstring for what a failure costs."""

    def __init__(self, waiters: Waiters, relay: Relay, *, name: str) -> None:
        self._waiters = waiters
        self._relay = relay
        self._name = name  # for the logs: "Redis", "PostgreSQL"
        self._pending = asyncio.Event()
        self._wake = False
        self._drops: set[tuple[str, str]] = set()
        self._tried = asyncio.Event()  # the first connection was attempted
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = False

    def queued(self) -> None:
        self._waiters.wake_queued()
        self._wake = True
        self._pending.set()

    def invalidate(self, scope: str, key: str) -> None:
        self._drops.add((scope, key))
        self._pending.set()

    def scheduled(self, due: datetime) -> None:
        self._waiters.wake_scheduled(due)

    def escalated(self, due: datetime) -> None:
        self._waiters.wake_escalated(due)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen_forever(), name="tidings-wakeup-listen"),
                       loop.create_task(self._send_forever(), name="tidings-wakeup-send")]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tried.wait(), START_WAIT_S)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._relay.close()

    async def _listen_forever(self) -> None:
        broken = False
        while True:
            try:
                await self._relay.open()
                self.listening = True
                self._tried.set()
                if broken:
                    log.info("control messages over %s are back", self._name)
                    self._waiters.wake_queued()  # what was raised meanwhile
                    self._waiters.drop_all()  # what was invalidated meanwhile
                    broken = False
                await self._relay.listen(self._waiters.wake_queued, self._waiters.invalidate)
            except Exception as exc:  # any failure of the connection: reconnect
                if not broken:
                    log.warning("control messages over %s stopped (%s): the workers poll and "
                                "cached preferences live out their 30 s until they are back",
                                self._name, type(exc).__name__)
                broken = True
            finally:
                self.listening = False
                self._tried.set()
                with contextlib.suppress(Exception):
                    await self._relay.close()
            await asyncio.sleep(RECONNECT_S)

    async def _send_forever(self) -> None:
        while True:
            await self._pending.wait()
            self._pending.clear()
            drops, self._drops = self._drops, set()
            if drops:
                try:
                    await asyncio.wait_for(self._relay.send_invalidations(sorted(drops)),
                                           SEND_TIMEOUT_S)
                except Exception as exc:  # lost: the entries' life bounds the staleness
                    log.debug("invalidations over %s were not sent (%s)", self._name, exc)
            if not self._wake:
                continue
            self._wake = False
            try:
                await asyncio.wait_for(self._relay.send(), SEND_TIMEOUT_S)
            except Exception as exc:  # lost: the other processes poll
                log.debug("a queue wake-up over %s was not sent (%s)", self._name, exc)
