"""SQL of the delivery queue: claim due deliveries, settle them, record their attempts.

Two lanes of the one table are claimed the same way: email, push and webhook deliveries
under a lease (sending happens outside any transaction; a settlement only lands while the
lease it was claimed under is still the row's), and scheduled in-app deliveries, which
the claim marks sent at once (the fan-out that follows has nothing to settle)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.delivery import AttemptRecord, DeliveryMedium
from tidings.domain.model import DeliveryStatus
from tidings.store.tables import delivery_attempts as attempts_table
from tidings.store.tables import notification_deliveries as deliveries

# Exactly the predicate of the partial index `ix_deliveries_queue`, as literal SQL, so the
# planner can match it (a bound parameter would hide the values from it).
DUE = sa.text("status IN ('pending', 'sending') AND medium <> 'in_app'")
# The last error of a settlement stored without its texts (`Settlement.stripped`).
STRIPPED = "the provider's answer could not be stored (see the worker's log)"


@dataclass(frozen=True, slots=True)
class Lane:
    """One part of the delivery table, claimed by one loop: which rows wait in it (literal
    SQL, read through the index made for it), and what a claim does to them."""

    waiting: sa.TextClause
    leased: bool  # claimed `sending` under a lease and settled later; else marked sent
    held_apart: bool  # rows held for a digest are left to `store.pacing.claim_digests`
    # Claimed by priority first (DESIGN section 12), as the lane's index is ordered.
    by_rank: bool = False


# Email, push and webhook deliveries: the partial index `ix_deliveries_queue`.
QUEUED = Lane(DUE, leased=True, held_apart=True, by_rank=True)
# Scheduled in-app deliveries: the index `ix_deliveries_due` (medium, status, due time).
# Never held for a digest (digests are email and push), so no such filter to read past.
IN_APP = Lane(sa.text("medium = 'in_app' AND status = 'pending'"), leased=False,
              held_apart=False)

# The columns of a `Claimed`, in its fields' order.
CLAIMED = (deliveries.c.id, deliveries.c.notification_id, deliveries.c.user_id,
           deliveries.c.medium, deliveries.c.attempts, deliveries.c.lease_token,
           deliveries.c.webhook_id, deliveries.c.event, deliveries.c.payload,
           deliveries.c.created_at, deliveries.c.trace_parent)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this worker holds until `lease_token` is settled or its lease ends (no
    token: claimed from a lane without leases, and already marked sent)."""

    id: int
    notification_id: str
    user_id: str
    medium: DeliveryMedium
    attempts: int  # tries made, this one included
    lease_token: str | None
    webhook_id: str | None
    event: str | None
    payload: dict[str, Any] | None
    created_at: datetime
    trace: str | None = None  # the traceparent its send continues (tracing on)


def claimed_of(row: Row[Any]) -> Claimed:
    """The `Claimed` of one row of `CLAIMED`."""
    values = list(row)
    values[3] = DeliveryMedium(values[3])
    return Claimed(*values)


@dataclass(frozen=True, slots=True)
class Settlement:
    """How one claimed delivery ended this time."""

    delivery: Claimed
    status: DeliveryStatus  # pending (a retry), sent, dead or skipped
    due_at: datetime | None = None  # for a retry
    last_error: str | None = None
    provider_id: str | None = None
    attempts: tuple[AttemptRecord, ...] = ()
    gone: tuple[str, ...] = ()  # devices the provider says no longer exist

    def stripped(self) -> Settlement:
        """The same ending (status, retry time, attempt outcomes, gone devices) without any
        text from outside: what is stored when the database refuses the whole settlement,
        so the delivery still ends as it did instead of being sent again."""
        return replace(
            self, last_error=STRIPPED if self.last_error is not None else None,
            provider_id=None,
            attempts=tuple(replace(a, code=None, error=None, provider_id=None)
                           for a in self.attempts))


def _unheld(lane: Lane) -> sa.ColumnElement[bool]:
    # Held deliveries go out, and are due, with their digest (`store.pacing`), not by
    # their row. (`true()` adds nothing to the SQL.)
    return deliveries.c.digest_id.is_(None) if lane.held_apart else sa.true()


async def claim(
    conn: AsyncConnection, now: datetime, limit: int, lease_s: float = 0.0,
    lane: Lane = QUEUED,
) -> list[Claimed]:
    """Take up to `limit` of the lane's due deliveries (oldest due first; in a lane by
    rank, critical, then high, then the rest, and oldest first within each), one more
    attempt counted. In a leased
    lane they are `sending` under a fresh lease until `now + lease_s`;
    a lease that ends makes the row due again by itself (`next_attempt_at` is its end).
    Otherwise they are `sent` at once. SKIP LOCKED lets workers and nodes claim side by
    side on PostgreSQL; SQLite has one writer, so the clause is left out there."""
    due = (
        sa.select(deliveries.c.id)
        .where(lane.waiting, deliveries.c.next_attempt_at <= now, _unheld(lane))
        .order_by(*((deliveries.c.rank,) if lane.by_rank else ()),
                  deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    values: dict[str, Any] = {"attempts": deliveries.c.attempts + 1, "updated_at": now}
    if lane.leased:
        until = now + timedelta(seconds=lease_s)
        values.update(status=DeliveryStatus.SENDING, lease_token=str(uuid.uuid4()),
                      locked_until=until, next_attempt_at=until)
    else:
        values.update(status=DeliveryStatus.SENT)
    result = await conn.execute(
        deliveries.update()
        .where(deliveries.c.id.in_(due.scalar_subquery()))
        .values(**values)
        .returning(*CLAIMED)
    )
    claimed = [claimed_of(row) for row in result]
    claimed.sort(key=lambda item: item.id)
    return claimed


async def settle(conn: AsyncConnection, settlements: Sequence[Settlement],
                 now: datetime) -> list[Settlement]:
    """Store each outcome where the row is still held under its lease; returns those that
    landed (a worker whose lease ran out, and whose row another worker took, changes
    nothing: that worker's own settlement decides)."""
    landed: list[Settlement] = []
    for item in settlements:
        values: dict[str, Any] = {
            "status": item.status, "lease_token": None, "locked_until": None,
            "last_error": item.last_error, "updated_at": now,
        }
        # A retry is due at its time; an ended delivery keeps when it ended (not the end
        # of the lease it was claimed under).
        values["next_attempt_at"] = item.due_at or now
        if item.provider_id is not None:  # cleaned and cut by its column (`OutsideText`)
            values["provider_message_id"] = item.provider_id
        result = await conn.execute(
            deliveries.update()
            # The notification id names the row's partition: one partition is touched.
            .where(deliveries.c.id == item.delivery.id,
                   deliveries.c.notification_id == item.delivery.notification_id,
                   deliveries.c.lease_token == item.delivery.lease_token)
            .values(**values)
        )
        if result.rowcount:
            landed.append(item)
    rows = [
        {"delivery_id": item.delivery.id, "notification_id": item.delivery.notification_id,
         "at": a.at, "outcome": a.outcome, "code": a.code,
         "error": a.error, "provider_id": a.provider_id, "device_id": a.device_id,
         "elapsed_ms": a.elapsed_ms, "provider": a.provider}
        for item in landed for a in item.attempts
    ]
    if rows:
        await conn.execute(attempts_table.insert(), rows)
    return landed


async def devices_reached(
    conn: AsyncConnection, delivery_ids: Sequence[int]
) -> dict[int, set[str]]:
    """The devices each push delivery already reached on an earlier try (a retry goes only
    to the others)."""
    if not delivery_ids:
        return {}
    result = await conn.execute(
        sa.select(attempts_table.c.delivery_id, attempts_table.c.device_id).where(
            attempts_table.c.delivery_id.in_(delivery_ids),
            attempts_table.c.outcome == "sent",
            attempts_table.c.device_id.is_not(None),
        )
    )
    reached: dict[int, set[str]] = {}
    for delivery_id, device_id in result:
        reached.setdefault(delivery_id, set()).add(device_id)
    return reached


async def next_due(conn: AsyncConnection, lane: Lane = QUEUED) -> datetime | None:
    """When the lane's next delivery falls due (None: nothing waits in it)."""
    result = await conn.execute(sa.select(sa.func.min(deliveries.c.next_attempt_at))
                                .where(lane.waiting, _unheld(lane)))
    value: datetime | None = result.scalar_one_or_none()
    return value


async def depth(conn: AsyncConnection) -> dict[str, int]:
    """Deliveries waiting or in flight, by medium (the queue-depth gauge)."""
    result = await conn.execute(
        sa.select(deliveries.c.medium, sa.func.count()).where(DUE).group_by(deliveries.c.medium)
    )
    return {medium: int(count) for medium, count in result}
