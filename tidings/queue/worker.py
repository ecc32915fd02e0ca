"""The delivery worker: claims due email, push and webhook deliveries in batches, sends
each through its medium, and settles it with the retry policy.

Runs inside `tidings serve` (embedded) and in any number of `tidings worker` processes
over the same database: the lease makes a delivery one worker's at a time, and a worker
that dies leaves rows that fall due again when their lease ends. Delivery is therefore at
least once; each provider request carries an id that is stable across attempts
(`Message-ID`, `apns-id`, an idempotency key) so duplicates stay rare and traceable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from tidings.crypto.cipher import FieldCipher
from tidings.domain.delivery import WEBHOOK
from tidings.domain.model import DeliveryStatus, Medium, utcnow
from tidings.maintenance import Maintenance
from tidings.metrics import Metrics
from tidings.queue.dispatch import BatchContext, Dispatcher
from tidings.realtime.fanout import Fanout
from tidings.services.batching import Batcher
from tidings.store import contacts as contact_store
from tidings.store import deliveries as delivery_store
from tidings.store import devices as device_store
from tidings.store import events
from tidings.store import notifications as notification_store
from tidings.store import queue as store
from tidings.store import webhooks as webhook_store
from tidings.store.database import Database
from tidings.store.queue import Claimed, Settlement

log = logging.getLogger(__name__)

DEPTH_EVERY_S = 5.0  # how often the queue-depth gauge is read from the database


class DeliveryWorker:
    """Owns the loop over the queue: when to claim (woken when deliveries are written,
    else polling), how many at once, settling under the lease, and telling sockets when a
    notification's status follows its deliveries."""

    def __init__(
        self,
        db: Database,
        fanout: Fanout | None,
        dispatcher: Dispatcher,
        metrics: Metrics,
        *,
        batch_size: int,
        lease_s: float,
        poll_s: float,
        clock: Callable[[], datetime] = utcnow,
        cipher: FieldCipher | None = None,
        maintenance: Maintenance | None = None,
    ) -> None:
        self._db = db
        self._cipher = cipher  # opens the parts sealed at rest, for the message bodies
        # Partitions ahead and retention, daily, beside the queue: every worker runs it.
        self._maintenance = maintenance
        self._fanout = fanout
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._batch = batch_size
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._depth_read = 0.0
        # Settlements arriving while one is written share the next transaction.
        self._settler: Batcher[Settlement, None] = Batcher(self._write_settlements, 500)

    def wake(self) -> None:
        """Deliveries were written or made due: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tidings-worker")
        if self._maintenance is not None:
            self._maintenance.start()

    async def stop(self) -> None:
        """Claim nothing more; the batch in hand is finished and settled first."""
        self._stopping = True
        self._wake.set()
        if self._maintenance is not None:
            await self._maintenance.stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> int:
        """One pass: claim a batch, send it, settle it; returns how many were claimed."""
        async with self._db.begin() as conn:
            claimed = await store.claim(conn, self._clock(), self._batch, self._lease_s)
        if claimed:
            context = await self._context(claimed)
            await asyncio.gather(*(self._deliver(item, context) for item in claimed))
        return len(claimed)

    async def _deliver(self, claimed: Claimed, context: BatchContext) -> None:
        try:
            settlement = await self._dispatcher.run(claimed, context)
        except Exception as exc:  # a sender bug must not lose the delivery: retry it
            log.exception("delivery %s failed unexpectedly", claimed.id)
            settlement = self._dispatcher.unexpected(claimed, exc)
        await self._settler.submit(settlement)

    async def _context(self, claimed: Sequence[Claimed]) -> BatchContext:
        push = [c.id for c in claimed if c.medium == Medium.PUSH.value and c.attempts > 1]
        async with self._db.begin() as conn:
            notes = await notification_store.get_many(
                conn, sorted({c.notification_id for c in claimed if c.medium != WEBHOOK}),
                cipher=self._cipher)
            return BatchContext(
                notifications={n.id: n for n in notes},
                emails={user_id: contact.email for user_id, contact in (
                    await contact_store.contact_of(conn, [
                        c.user_id for c in claimed if c.medium == Medium.EMAIL.value])
                ).items() if contact.email},
                devices=await device_store.active_devices(
                    conn, [c.user_id for c in claimed if c.medium == Medium.PUSH.value]),
                reached=await store.devices_reached(conn, push),
                webhooks=await webhook_store.webhook_targets(
                    conn, [c.webhook_id for c in claimed if c.webhook_id]),
            )

    async def _write_settlements(self, items: list[Settlement]) -> list[BaseException | None]:
        now = self._clock()
        async with self._db.begin() as conn:
            landed = await store.settle(conn, items, now)
            for device_id in {device for item in landed for device in item.gone}:
                await device_store.disable(conn, device_id, "the provider says it is gone",
                                           now)
            concerned = [i.delivery.notification_id for i in landed
                         if i.delivery.medium != WEBHOOK]
            changes = await delivery_store.refresh_statuses(conn, concerned, now)
            raised = await events.deliveries_settled(conn, landed, now)
            raised += await events.statuses_changed(conn, changes, now)
        if raised:
            self.wake()
        for item in landed:
            self._observe(item, now)
        if self._fanout is not None:
            for change in changes:
                await self._fanout.status_changed(change)
        return [None] * len(items)

    def _observe(self, item: Settlement, now: datetime) -> None:
        medium = item.delivery.medium
        for attempt in item.attempts:
            self._metrics.deliveries.labels(medium=medium, outcome=attempt.outcome).inc()
        if item.status == DeliveryStatus.SKIPPED.value:
            self._metrics.deliveries.labels(medium=medium, outcome="skipped").inc()
        elif item.status == DeliveryStatus.SENT.value:
            waited = (now - item.delivery.created_at).total_seconds()
            self._metrics.delivery_seconds.labels(medium=medium).observe(max(0.0, waited))
        elif item.status == DeliveryStatus.DEAD.value:
            self._metrics.dead_letters.labels(medium=medium).inc()
            log.warning("dead letter: delivery %s (%s) after %s attempt(s): %s",
                        item.delivery.id, medium, item.delivery.attempts, item.last_error)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before the pass: a wake during it is not lost
            try:
                await self._read_depth()
                if await self.run_once() >= self._batch:
                    continue  # more may be due: no sleep
                delay = await self._delay()
            except Exception:
                # A database hiccup must not end the loop; due rows wait for the next pass.
                log.exception("delivery pass failed")
                delay = self._poll_s
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _delay(self) -> float:
        async with self._db.begin() as conn:
            due = await store.next_due(conn)
        if due is None:
            return self._poll_s
        return min(self._poll_s, max(0.0, (due - self._clock()).total_seconds()))

    async def _read_depth(self) -> None:
        if time.monotonic() - self._depth_read < DEPTH_EVERY_S:
            return
        self._depth_read = time.monotonic()
        async with self._db.begin() as conn:
            depth = await store.depth(conn)
        for medium in ("email", "push", "webhook"):
            self._metrics.queue_depth.labels(medium=medium).set(depth.get(medium, 0))
