"""Writing back how deliveries ended: settlements under their lease, what follows from them
in the same transaction (gone devices, notification statuses, webhook events), the
delivery metrics, and telling sockets when a notification's status followed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from tidings.domain.delivery import DeliveryMedium
from tidings.domain.errors import Unavailable
from tidings.domain.model import DeliveryStatus
from tidings.queue.ports import Sockets
from tidings.store import deliveries as delivery_store
from tidings.store import devices as device_store
from tidings.store import events
from tidings.store import queue as store
from tidings.store.database import Database
from tidings.store.queue import Settlement
from tidings.support.batching import Batcher
from tidings.support.metrics import Metrics

log = logging.getLogger(__name__)

MAX_BATCH = 500  # settlements written in one transaction at most


class Settler:
    """Owns the write-back of settlements: those arriving while one is written share the
    next transaction (group commit); one the database refuses costs no other its
    settlement. `on_raised` is called when the settlements raised webhook events (new
    deliveries to claim)."""

    def __init__(self, db: Database, fanout: Sockets | None, metrics: Metrics,
                 clock: Callable[[], datetime], on_raised: Callable[[], None]) -> None:
        self._db = db
        self._fanout = fanout
        self._metrics = metrics
        self._clock = clock
        self._on_raised = on_raised
        self._batcher: Batcher[Settlement, None] = Batcher(self._write, MAX_BATCH)

    async def submit(self, settlement: Settlement) -> None:
        """Returns once the settlement is written (or could not be: then logged, and the
        delivery is sent again when its lease ends)."""
        await self._batcher.submit(settlement)

    async def _write(self, items: list[Settlement]) -> list[BaseException | None]:
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
                         if i.delivery.medium != DeliveryMedium.WEBHOOK]
            changes = await delivery_store.refresh_statuses(conn, concerned, now)
            raised = await events.deliveries_settled(conn, landed, now)
            raised += await events.statuses_changed(conn, changes, now)
        if raised:
            self._on_raised()
        for item in landed:
            self._observe(item, now)
        if self._fanout is not None:
            for change in changes:
                await self._fanout.status_changed(change)

    def _observe(self, item: Settlement, now: datetime) -> None:
        medium = item.delivery.medium.value
        for attempt in item.attempts:
            self._metrics.deliveries.labels(medium=medium, outcome=attempt.outcome).inc()
            self._metrics.delivery_attempts.labels(
                medium=medium, provider=attempt.provider or "", outcome=attempt.outcome).inc()
        if item.status == DeliveryStatus.SKIPPED:
            self._metrics.deliveries.labels(medium=medium, outcome="skipped").inc()
        elif item.status == DeliveryStatus.SENT:
            waited = (now - item.delivery.created_at).total_seconds()
            self._metrics.delivery_seconds.labels(medium=medium).observe(max(0.0, waited))
        elif item.status == DeliveryStatus.DEAD:
            self._metrics.dead_letters.labels(medium=medium).inc()
            log.warning("dead letter: delivery %s (%s) after %s attempt(s): %s",
                        item.delivery.id, medium, item.delivery.attempts, item.last_error)
