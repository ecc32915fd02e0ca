"""SQL for reading deliveries and keeping each notification's status in step with them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.delivery import DeliveryState, aggregate_status
from tidings.domain.model import Status
from tidings.domain.notification import StatusChange
from tidings.store.tables import notification_deliveries as deliveries
from tidings.store.tables import notifications

LOOKUP_SLICE = 500
_STATE = (deliveries.c.medium, deliveries.c.status, deliveries.c.attempts,
          deliveries.c.last_error, deliveries.c.updated_at, deliveries.c.digest_id,
          deliveries.c.deferred_until, deliveries.c.step)


async def states_of(
    conn: AsyncConnection, notification_ids: Sequence[str]
) -> dict[str, list[DeliveryState]]:
    """Each notification's deliveries to its user (webhook events left out), by medium."""
    found: dict[str, list[DeliveryState]] = {}
    for start in range(0, len(notification_ids), LOOKUP_SLICE):
        query = (
            sa.select(deliveries.c.notification_id, *_STATE)
            .where(deliveries.c.notification_id.in_(notification_ids[start:start + LOOKUP_SLICE]),
                   deliveries.c.webhook_id.is_(None))
            .order_by(deliveries.c.notification_id, deliveries.c.step, deliveries.c.medium)
        )
        for notification_id, *state in await conn.execute(query):
            found.setdefault(notification_id, []).append(DeliveryState(*state))
    return found


async def refresh_statuses(
    conn: AsyncConnection, notification_ids: Sequence[str], now: datetime
) -> list[StatusChange]:
    """Recompute these notifications' status from their deliveries (the contract's
    aggregate rule) and store what changed; returns the changes, to be told to sockets
    after the commit."""
    ids = sorted(set(notification_ids))
    if not ids:
        return []
    pairs: dict[str, list[tuple[str, str]]] = {}
    for start in range(0, len(ids), LOOKUP_SLICE):
        rows = await conn.execute(
            sa.select(deliveries.c.notification_id, deliveries.c.medium, deliveries.c.status)
            .where(deliveries.c.notification_id.in_(ids[start:start + LOOKUP_SLICE]))
        )
        for notification_id, medium, status in rows:
            pairs.setdefault(notification_id, []).append((medium, status))
    changes: list[StatusChange] = []
    for start in range(0, len(ids), LOOKUP_SLICE):
        current = await conn.execute(
            sa.select(notifications.c.id, notifications.c.user_id, notifications.c.status,
                      notifications.c.delivered_at, notifications.c.read_at)
            .where(notifications.c.id.in_(ids[start:start + LOOKUP_SLICE]))
        )
        for notification_id, user_id, status, delivered_at, read_at in current.all():
            wanted = aggregate_status(status, pairs.get(notification_id, ()))
            if wanted == status:
                continue
            if wanted == Status.DELIVERED and delivered_at is None:
                delivered_at = now
            # Conditional on the status read: a concurrent ack or read wins.
            result = await conn.execute(
                notifications.update()
                .where(notifications.c.id == notification_id, notifications.c.status == status)
                .values(status=wanted, delivered_at=delivered_at)
            )
            if result.rowcount:
                changes.append(StatusChange(notification_id, user_id, wanted, delivered_at,
                                            read_at))
    return changes
