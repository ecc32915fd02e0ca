"""Runs escalation steps when they fall due (contract section 12).

A loop beside the delivery worker, in every process that runs one: it claims due steps
under a lease (`store.escalations.claim`), and for each, in one transaction, either ends
it `canceled` (the notification reached the step's `unless`, or is gone) or writes its
deliveries and ends it `done`. The end is conditional on the lease, so a step runs once
across any number of workers, and one whose worker died falls due again when its lease
ends. It sleeps until the next step is due (at most a poll interval), and is woken when a
create writes steps.

The deliveries a step writes go through the usual rules: the recipient's preferences (a
`required` type's through opt-outs), a configured provider (else `skipped`), then quiet
hours and the hourly limit when the delivery worker claims them. A medium the
notification already has a live delivery of (pending, being sent, or sent, by the create
or an earlier step) is not sent twice: the step's row for it is `skipped`, saying which
step has it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from tidings.domain.catalogue import NotificationType
from tidings.domain.escalation import ClaimedStep, StepState
from tidings.domain.model import DeliveryStatus, Medium, utcnow
from tidings.domain.notification import NewDelivery, rank_of
from tidings.domain.pacing import window_closes
from tidings.domain.preference import choose_media, chosen_media
from tidings.store import catalogue as catalogue_store
from tidings.store import escalations as store
from tidings.store import notifications as notification_store
from tidings.store import pacing as pacing_store
from tidings.store import preferences as preference_store
from tidings.store.database import Connection, Database
from tidings.store.escalations import Target
from tidings.support.loops import Loop
from tidings.support.metrics import Metrics

log = logging.getLogger(__name__)

HELD_MEDIA = frozenset({Medium.EMAIL, Medium.PUSH})  # as at creation: in-app is never held


class _LeaseLost(Exception):
    """The step's lease ended and another worker holds it: write nothing."""


class EscalationRunner:
    """Owns the due steps of this process's claims."""

    def __init__(self, db: Database, *, deliverable: frozenset[Medium], lease_s: float,
                 poll_s: float, batch_size: int, queued: Callable[[], None] | None = None,
                 clock: Callable[[], datetime] = utcnow,
                 metrics: Metrics | None = None) -> None:
        self._db = db
        self._deliverable = deliverable | {Medium.IN_APP}
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._batch = batch_size
        self._queued = queued  # wakes the delivery worker for the deliveries written
        self._clock = clock
        self._loop = Loop("escalation", self._pass, interval_s=poll_s, metrics=metrics,
                          logger=log, failure="running escalation steps failed")

    def wake(self, due: datetime | None = None) -> None:
        """Look now, unless the first step written falls due after the next poll, which
        finds it anyway: a create with steps an hour away costs this loop nothing."""
        if due is None or due <= self._clock() + timedelta(seconds=self._poll_s):
            self._loop.wake()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self) -> int:
        """Claim the due steps and run each; returns how many were claimed."""
        async with self._db.begin() as conn:
            claimed = await store.claim(conn, self._clock(), self._batch, self._lease_s)
        wrote = False
        for step in claimed:
            try:
                wrote = await self._run(step) or wrote
            except _LeaseLost:
                log.warning("escalation step %s was taken by another worker", step.id)
            except Exception:
                # One step that fails must not hold up the others: it stays `running`
                # and falls due again when its lease ends.
                log.exception("escalation step %s failed", step.id)
        if wrote and self._queued is not None:
            self._queued()
        return len(claimed)

    async def _run(self, step: ClaimedStep) -> bool:
        """One step in one transaction; True when it wrote deliveries to send."""
        now = self._clock()
        async with self._db.begin() as conn:
            target = await store.target(conn, step.notification_id, step.unless, now)
            if target is None or target.reached:
                if not await store.finish(conn, step, StepState.CANCELED, now):
                    raise _LeaseLost
                return False
            rows = await self._deliveries(conn, step, target, now)
            if not await store.finish(conn, step, StepState.DONE, now):
                raise _LeaseLost  # rolls back: the holder of the lease writes them
            if any(row.medium is Medium.IN_APP and row.status == DeliveryStatus.PENDING
                   for row in rows):
                await store.show_in_app(conn, step.notification_id)
            await notification_store.insert_many(conn, [], rows, cipher=None)
        return any(row.status == DeliveryStatus.PENDING and row.medium is not Medium.IN_APP
                   for row in rows)

    async def _deliveries(self, conn: Connection, step: ClaimedStep, target: Target,
                          now: datetime) -> list[NewDelivery]:
        kind = await catalogue_store.get(conn, target.channel, target.type)
        mine = (await preference_store.rows_of(conn, [target.user_id])).get(target.user_id, [])
        allowed = choose_media(row for row in mine
                               if row.applies_to(target.channel, target.type))
        chosen = chosen_media(frozenset(step.media), allowed,
                              required=kind is not None and kind.spec.required)
        live = await store.media_written(conn, step.notification_id)
        rows: list[NewDelivery] = []
        for medium in sorted(chosen):
            status, error = DeliveryStatus.PENDING, None
            if medium in live:
                status = DeliveryStatus.SKIPPED
                error = f"{_label(medium)} already goes out with step {live[medium]}"
            elif medium not in self._deliverable:
                status = DeliveryStatus.SKIPPED
                error = f"no {_label(medium)} provider is configured"
            rows.append(NewDelivery(
                notification_id=step.notification_id, user_id=target.user_id, medium=medium,
                status=status, attempts=0, due_at=now, created_at=now, last_error=error,
                step=step.step, rank=rank_of(target.priority)))
        return await self._held(conn, step, kind, rows, now)

    async def _held(self, conn: Connection, step: ClaimedStep, kind: NotificationType | None,
                    rows: list[NewDelivery], now: datetime) -> list[NewDelivery]:
        """The step's email and push join a digest: the create's own, else its type's (the
        window open for that key, or one opened now)."""
        held = [row for row in rows
                if row.medium in HELD_MEDIA and row.status == DeliveryStatus.PENDING]
        if not held:
            return rows
        digest = step.digest
        if digest is None and kind is not None and kind.spec.digest_key is not None \
                and kind.spec.digest_window is not None:
            digest = (kind.spec.digest_key, kind.spec.digest_window)
        if digest is None:
            return rows
        key, window_s = digest
        windows = await pacing_store.open_windows(
            conn, [(row.user_id, row.medium) for row in held], key,
            window_closes(now, window_s), now)
        joined: list[NewDelivery] = []
        for row in rows:
            window = windows.get((row.user_id, row.medium)) if row in held else None
            joined.append(row if window is None else
                          replace(row, digest_id=window.id, due_at=window.closes_at))
        return joined

    async def _pass(self) -> float:
        if await self.run_once() >= self._batch:
            return 0.0  # more may be due: no sleep
        async with self._db.begin() as conn:
            due = await store.next_due(conn)
        if due is None:
            return self._poll_s
        return min(self._poll_s, max(0.0, (due - self._clock()).total_seconds()))


def _label(medium: Medium) -> str:
    return medium.value.replace("_", "-")
