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
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.crypto.cipher import FieldCipher
from tidings.domain import pacing
from tidings.domain.delivery import WEBHOOK
from tidings.domain.errors import Unavailable
from tidings.domain.model import DeliveryStatus, Medium, Priority, utcnow
from tidings.jobs.maintenance import Maintenance
from tidings.queue.dispatch import BatchContext, Dispatcher
from tidings.queue.ports import Sockets
from tidings.store import contacts as contact_store
from tidings.store import deliveries as delivery_store
from tidings.store import devices as device_store
from tidings.store import events
from tidings.store import notifications as notification_store
from tidings.store import pacing as pacing_store
from tidings.store import queue as store
from tidings.store import webhooks as webhook_store
from tidings.store.database import Database
from tidings.store.pacing import ClaimedDigest
from tidings.store.queue import Claimed, Settlement
from tidings.support.batching import Batcher
from tidings.support.metrics import Metrics

log = logging.getLogger(__name__)

DEPTH_EVERY_S = 5.0  # how often the queue-depth gauge is read from the database


class DeliveryWorker:
    """Owns the loop over the queue: when to claim (woken when deliveries are written,
    else polling), how many at once, settling under the lease, and telling sockets when a
    notification's status follows its deliveries."""

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
        self._throttle = throttle_per_hour
        self._devices_per_user = devices_per_user  # one push, at most this many requests
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
        """One pass: claim a batch, pace it (quiet hours, hourly limit), send what may go
        and settle it; then the same for closed digests. Returns how many were claimed."""
        async with self._db.begin() as conn:
            claimed = await store.claim(conn, self._clock(), self._batch, self._lease_s)
        if claimed:
            context = await self._context(claimed)
            going = await self._pace(claimed, context)
            await asyncio.gather(*(self._deliver(item, context) for item in going))
        async with self._db.begin() as conn:
            digests = await pacing_store.claim_digests(conn, self._clock(), self._batch,
                                                       self._lease_s)
        if digests:
            members = [m for d in digests for m in d.members]
            context = await self._context(members)
            await asyncio.gather(*(self._send_digest(d, context) for d in digests))
        return len(claimed) + len(digests)

    async def _pace(self, claimed: Sequence[Claimed], context: BatchContext) -> list[Claimed]:
        """The pacing checks, at claim time (contract section 9): a delivery due inside
        its user's quiet hours goes back to `pending` until they end; one past
        THROTTLE_PER_HOUR joins the (user, medium) digest sent at the next clock hour.
        Neither counts as a try. Returns the deliveries that go now."""
        now = self._clock()
        going: list[Claimed] = []
        async with self._db.begin() as conn:
            for item in claimed:
                note = context.notifications.get(item.notification_id)
                if item.medium == WEBHOOK or note is None:
                    going.append(item)
                    continue
                verdict, until = pacing.verdict(now, note.priority,
                                                context.quiet.get(item.user_id))
                if verdict is pacing.Verdict.DEFER and until is not None:
                    await pacing_store.release(conn, item, now, due_at=until,
                                               deferred_until=until)
                elif pacing.throttled(note.priority, item.attempts == 1, self._throttle) and (
                    not await pacing_store.count_send(conn, item.user_id, item.medium,
                                                      pacing.hour_of(now), self._throttle)
                ):
                    await self._fold(conn, item, now)
                else:
                    going.append(item)
        return going

    async def _fold(self, conn: AsyncConnection, item: Claimed, now: datetime) -> None:
        """Past the hourly limit: into the throttle digest of (user, medium), which goes
        at the start of the next hour and counts there as one send."""
        closes = pacing.next_hour(now)
        windows = await pacing_store.open_windows(conn, [(item.user_id, item.medium)],
                                                  pacing.THROTTLE_KEY, closes, now)
        window = windows[(item.user_id, item.medium)]
        await pacing_store.release(conn, item, now, due_at=window.closes_at,
                                   digest_id=window.id)

    async def _send_digest(self, digest: ClaimedDigest, context: BatchContext) -> None:
        """One message for all the digest's held deliveries, unless quiet hours hold it;
        every delivery is settled as the message was."""
        now = self._clock()
        notes = [context.notifications.get(m.notification_id) for m in digest.members]
        # A deleted notification takes its delivery rows with it: nothing to settle.
        alive = [m for m, n in zip(digest.members, notes, strict=True) if n is not None]
        items = [n for n in notes if n is not None]
        if not alive:
            async with self._db.begin() as conn:
                await pacing_store.settle_digest(conn, digest, DeliveryStatus.SKIPPED.value,
                                                 None, now)
            return
        urgent = Priority.CRITICAL.value if any(
            n.priority == Priority.CRITICAL.value for n in items) else Priority.MEDIUM.value
        verdict, until = pacing.verdict(now, urgent, context.quiet.get(digest.user_id))
        if verdict is pacing.Verdict.DEFER and until is not None:
            async with self._db.begin() as conn:
                await pacing_store.defer_digest(conn, digest, until, now)
            return
        if digest.attempts == 1 and self._throttle > 0 and urgent != Priority.CRITICAL.value:
            async with self._db.begin() as conn:  # a digest counts as one send
                await pacing_store.count_send(conn, digest.user_id, digest.medium,
                                              pacing.hour_of(now), None)
        stand_in = replace(alive[0], attempts=digest.attempts)
        try:
            outcome = await self._dispatcher.run_digest(stand_in, items, context)
        except Exception as exc:  # as for one delivery: retried, never lost
            log.exception("digest %s failed unexpectedly", digest.id)
            outcome = self._dispatcher.unexpected(stand_in, exc)
        # Submitted together, so the settler writes them in one transaction.
        await asyncio.gather(*(self._settler.submit(replace(outcome, delivery=member))
                               for member in alive))
        async with self._db.begin() as conn:
            await pacing_store.settle_digest(conn, digest, outcome.status, outcome.due_at,
                                             self._clock())

    async def _deliver(self, claimed: Claimed, context: BatchContext) -> None:
        try:
            settlement = await self._dispatcher.run(claimed, context)
        except Exception as exc:  # a sender bug must not lose the delivery: retry it
            log.exception("delivery %s failed unexpectedly", claimed.id)
            settlement = self._dispatcher.unexpected(claimed, exc)
        await self._settler.submit(settlement)

    async def _context(self, claimed: Sequence[Claimed]) -> BatchContext:
        push = [c.id for c in claimed if c.medium == Medium.PUSH.value and c.attempts > 1]
        users = sorted({c.user_id for c in claimed if c.medium != WEBHOOK})
        async with self._db.begin() as conn:
            notes = await notification_store.get_many(
                conn, sorted({c.notification_id for c in claimed if c.medium != WEBHOOK}),
                cipher=self._cipher)
            contacts = await contact_store.contact_of(conn, users)
            emailed = {c.user_id for c in claimed if c.medium == Medium.EMAIL.value}
            return BatchContext(
                notifications={n.id: n for n in notes},
                emails={user_id: contact.email for user_id, contact in contacts.items()
                        if contact.email and user_id in emailed},
                devices=await device_store.active_devices(
                    conn, [c.user_id for c in claimed if c.medium == Medium.PUSH.value],
                    self._devices_per_user),
                reached=await store.devices_reached(conn, push),
                webhooks=await webhook_store.webhook_targets(
                    conn, [c.webhook_id for c in claimed if c.webhook_id]),
                quiet={user_id: quiet for user_id, contact in contacts.items()
                       if (quiet := pacing.quiet_of(contact.quiet_hours, contact.timezone))},
            )

    async def _write_settlements(self, items: list[Settlement]) -> list[BaseException | None]:
        """All in one transaction; if that fails for any reason but an outage, each alone,
        so that one row the database refuses costs no other delivery its settlement (an
        unsettled delivery is sent again when its lease ends)."""
        try:
            await self._settle(items)
            return [None] * len(items)
        except Unavailable:
            raise
        except Exception:
            log.exception("settling %d deliveries together failed; settling each alone",
                          len(items))
        return [await self._settle_alone(item, tried=len(items) == 1) for item in items]

    async def _settle_alone(self, item: Settlement, *, tried: bool) -> BaseException | None:
        """One settlement in its own transaction, else the same ending without the
        provider's texts (`Settlement.stripped`); the error when neither could be stored."""
        failure: BaseException | None = None
        for version in ([item.stripped()] if tried else [item, item.stripped()]):
            try:
                await self._settle([version])
                return None
            except Unavailable as exc:
                return exc
            except Exception as exc:
                log.exception("delivery %s: the database refused its settlement",
                              item.delivery.id)
                failure = exc
        return failure

    async def _settle(self, items: list[Settlement]) -> None:
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
        for medium in ("email", "push", "webhook"):
            self._metrics.queue_depth.labels(medium=medium).set(depth.get(medium, 0))
