"""Engine.IO v4 heartbeat for every session, on one timer loop.

The server pings every `interval`; a session whose pong has not come within `timeout` of
its ping is closed. Both delays are the same for every session, so sessions become due in
the order they were scheduled: two FIFO queues, (due time, session), replace a timer per
connection, and each turn of the loop only looks at their heads. Entries are never removed
from the middle: a stale one (closed session, or a pong that already came) is skipped when
it reaches the head.

The loop runs while at least one session is alive, so an idle server (or a test that has
closed its clients) holds no task.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from tidings.realtime.lean.session import Session

log = logging.getLogger(__name__)

# Pings are batched to this granularity (at most), so 10,000 sessions opened at spread-out
# moments do not wake the loop 10,000 times per interval.
MAX_TICK = 0.25


class Heartbeat:
    __slots__ = ("_alive", "_interval", "_on_ping", "_on_timeout", "_pings", "_pongs",
                 "_task", "_tick", "_timeout")

    def __init__(
        self,
        interval: float,
        timeout: float,
        on_ping: Callable[[Session], None],
        on_timeout: Callable[[Session], Awaitable[None]],
    ) -> None:
        self._interval = interval
        self._timeout = timeout
        self._tick = min(MAX_TICK, interval / 10, timeout / 10)
        self._on_ping = on_ping
        self._on_timeout = on_timeout
        self._pings: deque[tuple[float, Session]] = deque()  # when each is due a ping
        self._pongs: deque[tuple[float, Session]] = deque()  # when each pong is due
        self._alive = 0
        self._task: asyncio.Task[None] | None = None

    def add(self, session: Session) -> None:
        self._pings.append((self._now() + self._interval, session))
        self._alive += 1
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def remove(self, session: Session) -> None:
        """The session is closed (its entries go stale); the last one stops the loop."""
        self._alive -= 1
        if self._alive == 0:
            self.stop()

    def pong(self, session: Session) -> None:
        # As the reference servers do, the next ping is one interval after the pong.
        if session.awaiting_pong:
            session.awaiting_pong = False
            self._pings.append((self._now() + self._interval, session))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._pings.clear()
        self._pongs.clear()

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _run(self) -> None:
        while True:
            now = self._now()
            self._send_pings(now)
            await self._expire(now)
            heads = [queue[0][0] for queue in (self._pings, self._pongs) if queue]
            wait = (min(heads) - now) if heads else self._interval
            await asyncio.sleep(max(wait, self._tick))

    def _send_pings(self, now: float) -> None:
        pings = self._pings
        while pings and pings[0][0] <= now:
            _, session = pings.popleft()
            if session.closed or session.awaiting_pong:
                continue
            session.awaiting_pong = True
            session.ping_sent_at = now
            self._pongs.append((now + self._timeout, session))
            self._on_ping(session)

    async def _expire(self, now: float) -> None:
        pongs = self._pongs
        while pongs and pongs[0][0] <= now:
            due, session = pongs.popleft()
            # Stale unless this entry belongs to the ping still unanswered.
            if session.closed or not session.awaiting_pong or \
                    session.ping_sent_at + self._timeout != due:
                continue
            log.debug("session %s: no pong within %.1f s, closing", session.sid, self._timeout)
            try:
                await self._on_timeout(session)
            except Exception:  # one session's close must not stop everyone's heartbeat
                log.exception("closing session %s after ping timeout failed", session.sid)
