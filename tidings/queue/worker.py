"""The delivery worker: claims due email, push and webhook deliveries in batches, sends
each through its medium, and settles it with the retry policy.

Runs inside `tidings serve` (embedded) and in any number of `tidings worker` processes
over the same database: the lease makes a delivery one worker's at a time, and a worker
that dies leaves rows that fall due again when their lease ends. Delivery is therefore at
least once; each provider request carries an id that is stable across attempts
(`Message-ID`, `apns-id`, an idempotency key) so duplicates stay rare and traceable.

The pieces of a pass each have their module: `context` (what a batch needs from the
database), `pacing` (quiet hours and the hourly limit, at claim time), `digests`,
`dispatch` (one try through its medium) and `settlement` (the write-back and metrics).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from tidings.crypto.cipher import FieldCipher
from tidings.domain.model import DeliveryStatus, utcnow
from tidings.jobs.maintenance import Maintenance
from tidings.queue.batch import BatchContext
from tidings.queue.context import load_context
from tidings.queue.digests import DigestSender
from tidings.queue.dispatch import Dispatcher
from tidings.queue.pacing import Pacer
from tidings.queue.ports import Sockets
from tidings.queue.settlement import Settler
from tidings.store import pacing as pacing_store
from tidings.store import queue as store
from tidings.store.database import Database
from tidings.store.queue import Claimed
from tidings.support.loops import Loop
from tidings.support.metrics import QUEUED_MEDIA, Metrics
from tidings.support.tracing import SpanKind, Traces, failed

log = logging.getLogger(__name__)

DEPTH_EVERY_S = 5.0  # how often the queue-depth gauge is read from the database


class DeliveryWorker:
    """Owns the loop over the queue: when to claim (woken when deliveries are written,
    else polling), how many at once, and the order of a pass: claim, pace, send, settle."""

    def __init__(
        self,
        db: Database,
        fanout: Sockets | None,
        dispatcher: Dispatcher,
        metrics: Metrics,
        *,
        batch_size: int,
        lease_s: float,
        poll_s: float,
        throttle_per_hour: int = 0,
        clock: Callable[[], datetime] = utcnow,
        cipher: FieldCipher | None = None,
        maintenance: Maintenance | None = None,
        devices_per_user: int = 20,
        traces: Traces | None = None,
    ) -> None:
        self._db = db
        self._traces = traces or Traces.off()
        self._cipher = cipher  # opens the parts sealed at rest, for the message bodies
        # Partitions ahead and retention, daily, beside the queue: every worker runs it.
        self._maintenance = maintenance
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._batch = batch_size
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._clock = clock
        self._devices_per_user = devices_per_user  # one push, at most this many requests
        self._depth_read = 0.0
        # Settlements that raise webhook events wake this worker for them.
        self._settler = Settler(db, fanout, metrics, clock, on_raised=self.wake)
        self._pacer = Pacer(db, clock, throttle_per_hour)
        self._digests = DigestSender(db, dispatcher, self._settler, clock, throttle_per_hour)
        self._loop = Loop("worker", self._pass, interval_s=poll_s, metrics=metrics,
                          failure="delivery pass failed", logger=log)

    def wake(self) -> None:
        """Deliveries were written or made due: look now rather than at the next poll."""
        self._loop.wake()

    def start(self) -> None:
        self._loop.start()
        if self._maintenance is not None:
            self._maintenance.start()

    async def stop(self) -> None:
        """Claim nothing more; the batch in hand is finished and settled first."""
        if self._maintenance is not None:
            await self._maintenance.stop()
        await self._loop.stop()

    async def run_once(self) -> int:
        """One pass: claim a batch, pace it (quiet hours, hourly limit), send what may go
        and settle it; then the same for closed digests. Returns how many were claimed."""
        async with self._db.begin() as conn:
            claimed = await store.claim(conn, self._clock(), self._batch, self._lease_s)
        if claimed:
            context = await self._context(claimed)
            going = await self._pacer.pace(claimed, context)
            await asyncio.gather(*(self._deliver(item, context) for item in going))
        async with self._db.begin() as conn:
            digests = await pacing_store.claim_digests(conn, self._clock(), self._batch,
                                                       self._lease_s)
        if digests:
            members = [m for d in digests for m in d.members]
            context = await self._context(members)
            await asyncio.gather(*(self._digests.send(d, context) for d in digests))
        return len(claimed) + len(digests)

    async def _deliver(self, claimed: Claimed, context: BatchContext) -> None:
        traces = self._traces
        if traces.on and claimed.trace is not None:
            # The time it waited: from its row's writing (or its last try) to this claim.
            traces.record("tidings.queue", parent=claimed.trace,
                          start_ns=_ns(claimed.created_at), end_ns=time.time_ns(),
                          attributes={"tidings.delivery_id": claimed.id})
        with traces.span("tidings.send", parent=claimed.trace, kind=SpanKind.CLIENT,
                         attributes=_attributes(claimed)) as span:
            try:
                settlement = await self._dispatcher.run(claimed, context)
            except Exception as exc:  # a sender bug must not lose the delivery: retry it
                log.exception("delivery %s failed unexpectedly", claimed.id)
                settlement = self._dispatcher.unexpected(claimed, exc)
            if span is not None:
                span.set_attribute("tidings.status", str(settlement.status))
                if settlement.status != DeliveryStatus.SENT and settlement.last_error:
                    failed(span, settlement.last_error)
        await self._settler.submit(settlement)

    async def _context(self, claimed: list[Claimed]) -> BatchContext:
        return await load_context(self._db, claimed, cipher=self._cipher,
                                  devices_per_user=self._devices_per_user)

    async def _pass(self) -> float:
        """One pass of the loop; returns how long to wait before the next one."""
        await self._read_depth()
        if await self.run_once() >= self._batch:
            return 0.0  # more may be due: no sleep
        return await self._delay()

    async def _delay(self) -> float:
        async with self._db.begin() as conn:
            dues = [await store.next_due(conn), await pacing_store.next_due(conn)]
        due = min((d for d in dues if d is not None), default=None)
        if due is None:
            return self._poll_s
        return min(self._poll_s, max(0.0, (due - self._clock()).total_seconds()))

    async def _read_depth(self) -> None:
        if time.monotonic() - self._depth_read < DEPTH_EVERY_S:
            return
        self._depth_read = time.monotonic()
        async with self._db.begin() as conn:
            depth = await store.depth(conn)
        for medium in QUEUED_MEDIA:
            self._metrics.queue_depth.labels(medium=medium).set(depth.get(medium, 0))


def _ns(instant: datetime) -> int:
    return int(instant.timestamp() * 1_000_000_000)


def _attributes(claimed: Claimed) -> dict[str, str | int]:
    return {"tidings.medium": str(claimed.medium), "tidings.delivery_id": claimed.id,
            "tidings.notification_id": claimed.notification_id,
            "tidings.attempt": claimed.attempts}
