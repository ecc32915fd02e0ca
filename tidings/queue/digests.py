"""Sending a closed digest: one message for all its held deliveries, unless quiet hours
hold it; every delivery is then settled as the message was."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from tidings.domain import pacing
from tidings.domain.model import DeliveryStatus, Priority
from tidings.queue.batch import BatchContext
from tidings.queue.composing import withdrawn
from tidings.queue.dispatch import Dispatcher
from tidings.queue.settlement import Settler
from tidings.store import pacing as pacing_store
from tidings.store.database import Database
from tidings.store.pacing import ClaimedDigest
from tidings.store.queue import Settlement

log = logging.getLogger(__name__)


class DigestSender:
    """Sends claimed digests through the dispatcher and settles them and their members."""

    def __init__(self, db: Database, dispatcher: Dispatcher, settler: Settler,
                 clock: Callable[[], datetime], throttle_per_hour: int) -> None:
        self._db = db
        self._dispatcher = dispatcher
        self._settler = settler
        self._clock = clock
        self._throttle = throttle_per_hour

    async def send(self, digest: ClaimedDigest, context: BatchContext) -> None:
        now = self._clock()
        notes = [context.notifications.get(m.notification_id) for m in digest.members]
        # A deleted notification takes its delivery rows with it: nothing to settle. A
        # canceled or expired one ends skipped, and the digest goes without it.
        withdrawn_ = [(m, why) for m, n in zip(digest.members, notes, strict=True)
                      if n is not None and (why := withdrawn(n, now)) is not None]
        await asyncio.gather(*(self._settler.submit(Settlement(m, DeliveryStatus.SKIPPED,
                                                               last_error=why))
                               for m, why in withdrawn_))
        alive = [m for m, n in zip(digest.members, notes, strict=True)
                 if n is not None and n.live_at(now)]
        items = [n for n in notes if n is not None and n.live_at(now)]
        if not alive:
            async with self._db.begin() as conn:
                await pacing_store.settle_digest(conn, digest, DeliveryStatus.SKIPPED, None,
                                                 now)
            return
        urgent = Priority.CRITICAL if any(
            n.priority == Priority.CRITICAL for n in items) else Priority.MEDIUM
        verdict, until = pacing.verdict(now, urgent, context.quiet.get(digest.user_id))
        if verdict is pacing.Verdict.DEFER and until is not None:
            async with self._db.begin() as conn:
                await pacing_store.defer_digest(conn, digest, until, now)
            return
        if digest.attempts == 1 and self._throttle > 0 and urgent != Priority.CRITICAL:
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
