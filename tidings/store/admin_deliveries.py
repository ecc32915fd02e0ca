"""SQL for operators' view of the delivery table: listing deliveries, one delivery with its
attempt history, and putting dead letters back in the queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.dead_letters import DeliveryFilter, ReplayFilter
from tidings.domain.delivery import AttemptRecord, Delivery
from tidings.domain.model import DeliveryStatus
from tidings.store.tables import delivery_attempts as attempts
from tidings.store.tables import notification_deliveries as deliveries

DEAD = DeliveryStatus.DEAD

# Selected in the record's field order, so a row becomes a record positionally.
_COLUMNS = (
    deliveries.c.id, deliveries.c.notification_id, deliveries.c.user_id, deliveries.c.medium,
    deliveries.c.status, deliveries.c.attempts, deliveries.c.last_error,
    deliveries.c.next_attempt_at, deliveries.c.updated_at, deliveries.c.provider_message_id,
    deliveries.c.webhook_id, deliveries.c.event, deliveries.c.step,
)
_HISTORY = (
    attempts.c.at, attempts.c.outcome, attempts.c.code, attempts.c.error,
    attempts.c.provider_id, attempts.c.device_id, attempts.c.elapsed_ms, attempts.c.provider,
)


def _select() -> sa.Select[Any]:
    return sa.select(*_COLUMNS)


def _record(row: Row[Any]) -> Delivery:
    return Delivery(*tuple(row))


async def list_page(
    conn: AsyncConnection, filters: DeliveryFilter, limit: int,
    before: tuple[datetime, int] | None,
) -> list[Delivery]:
    """Most recently changed first, keyset-paginated on (updated_at, id); `limit + 1`
    records tell whether another page exists. A row only ever moves to the front (its
    `updated_at` grows), so paging never shows a row twice."""
    clauses: list[sa.ColumnElement[bool]] = []
    if filters.status is not None:
        clauses.append(deliveries.c.status == filters.status)
    if filters.medium is not None:
        clauses.append(deliveries.c.medium == filters.medium)
    if filters.user_id is not None:
        clauses.append(deliveries.c.user_id == filters.user_id)
    if filters.since is not None:
        clauses.append(deliveries.c.updated_at >= filters.since)
    if before is not None:
        clauses.append(sa.tuple_(deliveries.c.updated_at, deliveries.c.id) < before)
    query = (
        _select()
        .where(*clauses)
        .order_by(deliveries.c.updated_at.desc(), deliveries.c.id.desc())
        .limit(limit + 1)
    )
    return [_record(row) for row in await conn.execute(query)]


async def get(conn: AsyncConnection, delivery_id: int) -> Delivery | None:
    row = (await conn.execute(_select().where(deliveries.c.id == delivery_id))).first()
    return _record(row) if row is not None else None


async def history(conn: AsyncConnection, delivery_id: int) -> list[AttemptRecord]:
    """Every recorded attempt of the delivery, oldest first."""
    query = (
        sa.select(*_HISTORY)
        .where(attempts.c.delivery_id == delivery_id)
        .order_by(attempts.c.id)
    )
    return [AttemptRecord(*tuple(row)) for row in await conn.execute(query)]


def _requeued(now: datetime) -> dict[str, Any]:
    # Due at once with a fresh count; the lease goes, the last error stays (it says why the
    # letter died until the next attempt writes its own).
    return {
        "status": DeliveryStatus.PENDING, "attempts": 0, "next_attempt_at": now,
        "locked_until": None, "lease_token": None, "updated_at": now,
        # A dead letter of a digest is replayed on its own: its digest has ended.
        "digest_id": None,
    }


async def replay_one(conn: AsyncConnection, delivery_id: int, now: datetime) -> bool:
    """Put one dead letter back in the queue; False when the delivery is not (or no
    longer) dead."""
    result = await conn.execute(
        deliveries.update()
        .where(deliveries.c.id == delivery_id, deliveries.c.status == DEAD)
        .values(**_requeued(now))
    )
    return bool(result.rowcount)


def _dead(filters: ReplayFilter, after_id: int) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = [deliveries.c.status == DEAD]
    if filters.medium is not None:
        clauses.append(deliveries.c.medium == filters.medium)
    if filters.since is not None:
        clauses.append(deliveries.c.updated_at >= filters.since)
    if filters.until is not None:
        clauses.append(deliveries.c.updated_at < filters.until)
    if after_id:
        clauses.append(deliveries.c.id > after_id)
    return clauses


async def count_dead(
    conn: AsyncConnection, filters: ReplayFilter, at_most: int, after_id: int = 0
) -> int:
    """How many dead letters match (with ids above `after_id`), counting no further than
    `at_most`, so a dry run over millions of rows stays cheap."""
    matching = sa.select(deliveries.c.id).where(*_dead(filters, after_id)).limit(at_most)
    query = sa.select(sa.func.count()).select_from(matching.subquery())
    return int((await conn.execute(query)).scalar_one())


async def replay_batch(
    conn: AsyncConnection, filters: ReplayFilter, after_id: int, size: int, now: datetime
) -> tuple[list[int], list[str]]:
    """Put up to `size` matching dead letters with ids above `after_id` back in the queue,
    in id order. Returns the ids looked at and the notification ids of the rows replayed
    (a row that stopped being dead meanwhile is looked at but left alone)."""
    picked = [
        int(value) for value in (
            await conn.execute(
                sa.select(deliveries.c.id)
                .where(*_dead(filters, after_id))
                .order_by(deliveries.c.id)
                .limit(size)
            )
        ).scalars()
    ]
    if not picked:
        return [], []
    replayed = await conn.execute(
        deliveries.update()
        .where(deliveries.c.id.in_(picked), deliveries.c.status == DEAD)
        .values(**_requeued(now))
        .returning(deliveries.c.notification_id)
    )
    return picked, [str(value) for value in replayed.scalars()]
