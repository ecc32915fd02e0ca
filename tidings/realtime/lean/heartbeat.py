"""The deadlines of every session, on one timer: Engine.IO v4 ping/pong, and the connect
deadline of sessions that have not joined namespace `/`.

The server pings every `interval`; a session whose pong has not come within `timeout` of
its ping is closed; a session without a connected namespace `/` is closed `connect_timeout`
after it opened (or after it left `/`), so a client that answers pings but never
authenticates does not hold a session forever. Each delay is the same for every session,
so sessions become due in the order they were scheduled: three FIFO queues of (due time,
session) replace a timer per connection. Entries are never removed from the middle: a stale
one (closed session, pong already come, namespace joined) is dropped when it reaches the
head.

Timing: the loop sleeps until the earliest live deadline, exactly (one `call_at` for the
whole server), so a pong deadline closes its session on time rather than on the next step
of a coarse clock. CPU stays bounded at 10k sessions because deadlines are made to
coincide: pings due within one tick are sent together (up to a tick early, which no client
minds), so the pong deadlines they start are shared; connect deadlines are rounded up to
the tick. The loop wakes at most a few times per tick, however many sessions there are.

The loop runs while at least one session is alive, so an idle server (or a test that has
closed its clients) holds no task.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable

from tidings.realtime.lean.session import Session

log = logging.getLogger(__name__)

# Deadlines are batched to this granularity at most, so 10,000 sessions opened at
# spread-out moments do not wake the loop 10,000 times per interval.
MAX_TICK = 0.25
# Timers may fire this much before their time (libuv rounds to milliseconds): a deadline
# this close counts as reached, so the loop never spins waiting for the last fraction.
SLACK = 0.002

Queue = deque[tuple[float, Session]]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Heartbeat:
    __slots__ = (
        "_alive",
        "_connect_timeout",
        "_connects",
        "_handle",
        "_interval",
        "_on_expire",
        "_on_ping",
        "_pings",
        "_pongs",
        "_task",
        "_tick",
        "_timeout",
        "_timer",
        "wake_at",
    )

    def __init__(
        self,
        interval: float,
        timeout: float,
        connect_timeout: float,
        on_ping: Callable[[Session], None],
        on_expire: Callable[[Session], Awaitable[None]],
    ) -> None:
        self._interval = interval
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._tick = min(MAX_TICK, interval / 10, timeout / 10, connect_timeout / 10)
        self._on_ping = on_ping
        self._on_expire = on_expire
        self._pings: Queue = deque()  # when each is due a ping
        self._pongs: Queue = deque()  # when each pong is due
        self._connects: Queue = deque()  # when each must have joined namespace `/`
        self._alive = 0
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.Future[None] | None = None  # what the loop sleeps on
        self._handle: asyncio.TimerHandle | None = None  # what resolves it
        self.wake_at = math.inf  # when the loop wakes next (for tests and debugging)

    def add(self, session: Session) -> None:
        now = self._now()
        self._pings.append((now + self._interval, session))
        self._alive += 1
        self._expect_connect(session, now)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        else:
            self._wake_by(min(now + self._interval, session.connect_due))

    def remove(self, session: Session) -> None:
        """The session is closed (its entries go stale); the last one stops the loop."""
        self._alive -= 1
        if self._alive == 0:
            self.stop()

    def joined(self, session: Session) -> None:
        """Namespace `/` is connected: the connect deadline no longer applies."""
        session.connect_due = math.inf

    def expect_connect(self, session: Session) -> None:
        """Namespace `/` was left: the connect deadline applies again, from now."""
        self._expect_connect(session, self._now())
        self._wake_by(session.connect_due)

    def pong(self, session: Session) -> None:
        # As the reference servers do, the next ping is one interval after the pong.
        if session.awaiting_pong:
            session.awaiting_pong = False
            due = self._now() + self._interval
            self._pings.append((due, session))
            self._wake_by(due)  # earlier than the pong deadline the loop sleeps until

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._timer = None
        self.wake_at = math.inf
        self._pings.clear()
        self._pongs.clear()
        self._connects.clear()

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _expect_connect(self, session: Session, now: float) -> None:
        due = math.ceil((now + self._connect_timeout) / self._tick) * self._tick
        session.connect_due = due
        self._connects.append((due, session))

    def _wake_by(self, due: float) -> None:
        """Bring the loop's next wake-up forward to `due` if it sleeps longer."""
        timer = self._timer
        if timer is None or timer.done() or due >= self.wake_at:
            return
        if self._handle is not None:
            self._handle.cancel()
        self.wake_at = due
        self._handle = asyncio.get_running_loop().call_at(due, _resolve, timer)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self._send_pings(now)
            await self._expire(now)
            self._timer = loop.create_future()
            self.wake_at = self._next_due()
            self._handle = None
            if self.wake_at != math.inf:
                self._handle = loop.call_at(self.wake_at, _resolve, self._timer)
            await self._timer

    def _next_due(self) -> float:
        """The earliest live deadline; stale heads are dropped on the way."""
        pings, pongs, connects = self._pings, self._pongs, self._connects
        while pings and (pings[0][1].closed or pings[0][1].awaiting_pong):
            pings.popleft()
        while pongs and not self._pong_pending(*pongs[0]):
            pongs.popleft()
        while connects and not self._connect_pending(*connects[0]):
            connects.popleft()
        return min((queue[0][0] for queue in (pings, pongs, connects) if queue),
                   default=math.inf)

    def _send_pings(self, now: float) -> None:
        pings = self._pings
        while pings and pings[0][0] <= now + self._tick:
            _, session = pings.popleft()
            if session.closed or session.awaiting_pong:
                continue
            session.awaiting_pong = True
            session.ping_sent_at = now
            self._pongs.append((now + self._timeout, session))
            self._on_ping(session)

    def _pong_pending(self, due: float, session: Session) -> bool:
        # Stale unless this entry belongs to the ping still unanswered.
        return not session.closed and session.awaiting_pong and \
            session.ping_sent_at + self._timeout == due

    @staticmethod
    def _connect_pending(due: float, session: Session) -> bool:
        return not session.closed and session.connect_due == due

    async def _expire(self, now: float) -> None:
        for queue, pending, why in (
            (self._pongs, self._pong_pending, "no pong"),
            (self._connects, self._connect_pending, "no namespace joined"),
        ):
            while queue and queue[0][0] <= now + SLACK:
                due, session = queue.popleft()
                if not pending(due, session):
                    continue
                log.debug("session %s: %s in time, closing", session.sid, why)
                try:
                    await self._on_expire(session)
                except Exception:  # one session's close must not stop everyone's timers
                    log.exception("closing session %s (%s) failed", session.sid, why)
