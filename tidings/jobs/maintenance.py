"""Daily database maintenance: partitions ahead of time, then retention.

Run by every delivery worker (inside `tidings serve` and in `tidings worker` processes) and
by `tidings partitions ensure|prune`. Several runs at once are safe: the DDL takes an
advisory lock, and every step is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tidings.domain.model import utcnow
from tidings.store import broadcasts, escalations
from tidings.store import partitions as store
from tidings.store.database import Database
from tidings.support.loops import Loop
from tidings.support.metrics import Metrics

log = logging.getLogger(__name__)

DAY_S = 86_400.0
AHEAD_MONTHS = 3


@dataclass
class Retention:
    """What one retention run removed."""

    partitions: list[str] = field(default_factory=list)
    notifications: int = 0
    idempotency_keys: int = 0
    escalation_steps: int = 0


async def ensure_partitions(db: Database, now: datetime, ahead: int) -> list[str]:
    """The current month's and the `ahead` next months' partitions exist afterwards
    (PostgreSQL; nothing to do on SQLite). Returns those created now."""
    async with db.begin() as conn:
        return await store.ensure(conn, now, ahead)


async def apply_retention(db: Database, now: datetime, retention_days: int) -> Retention:
    """Idempotency keys older than 24 hours go; with `retention_days` > 0, notifications
    older than that too, with their deliveries and attempts (whole partitions on
    PostgreSQL; batches of one transaction each on SQLite, so the single writer is never
    held for long)."""
    report = Retention()
    async with db.begin() as conn:
        report.idempotency_keys = await store.purge_idempotency_keys(conn, now)
    if retention_days <= 0:
        return report
    cutoff = now - timedelta(days=retention_days)
    async with db.begin() as conn:  # ended steps, as old as the notifications that go
        report.escalation_steps = await escalations.purge_ended(conn, cutoff)
        # Broadcasts and users' states of them: the same id range as the notifications.
        await broadcasts.forget_before(conn, store.id_prefix(cutoff))
    if db.dialect == "postgresql":
        async with db.begin() as conn:
            report.partitions = await store.drop_old_partitions(conn, cutoff)
        return report
    while True:
        async with db.begin() as conn:
            deleted = await store.delete_old_batch(conn, cutoff, store.SQLITE_BATCH)
        report.notifications += deleted
        if deleted < store.SQLITE_BATCH:
            return report


class Maintenance:
    """Runs `ensure_partitions` then `apply_retention` at start and every day after (a
    failed run, too, is tried again a day later: deliveries are unaffected meanwhile)."""

    def __init__(self, db: Database, *, retention_days: int, ahead: int = AHEAD_MONTHS,
                 every_s: float = DAY_S, clock: Callable[[], datetime] = utcnow,
                 metrics: Metrics | None = None) -> None:
        self._db = db
        self._retention_days = retention_days
        self._ahead = ahead
        self._every_s = every_s
        self._clock = clock
        self.runs = 0  # completed runs, for observers
        # Stopping cancels a run in hand: every step is idempotent, the next start redoes it.
        self._loop = Loop("maintenance", self._pass, interval_s=every_s, metrics=metrics,
                          cancel_on_stop=True, logger=log,
                          failure="database maintenance failed")

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self) -> Retention:
        now = self._clock()
        created = await ensure_partitions(self._db, now, self._ahead)
        if created:
            log.info("created partitions: %s", ", ".join(created))
        report = await apply_retention(self._db, now, self._retention_days)
        if report.partitions or report.notifications:
            log.info("retention removed partitions %s and %d notification(s)",
                     report.partitions, report.notifications)
        self.runs += 1
        return report

    async def _pass(self) -> float:
        await self.run_once()
        return self._every_s
