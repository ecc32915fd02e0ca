"""What a node reads from the database to keep its own sockets live while the fan-out
between nodes (Redis) is down: what became visible, and which statuses moved, after a
watermark, for the users it holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.notification import Notification, StatusChange
from tidings.store import notifications as notification_store
from tidings.store.tables import notifications

# Users per query: keeps the IN list under every driver's parameter limit.
USERS_PER_QUERY = 500


async def visible_since(
    conn: AsyncConnection, user_ids: Sequence[str], after: datetime, now: datetime,
    limit: int,
) -> list[Notification]:
    """In-app notifications of these users that became visible in (after, now], oldest
    first, with their deliveries; at most `limit` per slice of users."""
    found: list[Notification] = []
    for start in range(0, len(user_ids), USERS_PER_QUERY):
        query = (
            sa.select(notifications.c.id)
            .where(
                notifications.c.user_id.in_(user_ids[start:start + USERS_PER_QUERY]),
                notifications.c.in_app.is_(True),
                notifications.c.visible_at > after,
                notifications.c.visible_at <= now,
            )
            .order_by(notifications.c.visible_at, notifications.c.id)
            .limit(limit)
        )
        ids = [row.id for row in await conn.execute(query)]
        found += await notification_store.get_many(conn, ids)
    found.sort(key=lambda note: note.position)
    return await notification_store.with_deliveries(conn, found)


async def statuses_since(
    conn: AsyncConnection, user_ids: Sequence[str], after: datetime, limit: int,
) -> list[StatusChange]:
    """Notifications of these users delivered or read after `after`, as status changes."""
    changes: list[StatusChange] = []
    columns = (notifications.c.id, notifications.c.user_id, notifications.c.status,
               notifications.c.delivered_at, notifications.c.read_at)
    for start in range(0, len(user_ids), USERS_PER_QUERY):
        query = (
            sa.select(*columns)
            .where(
                notifications.c.user_id.in_(user_ids[start:start + USERS_PER_QUERY]),
                sa.or_(notifications.c.delivered_at > after, notifications.c.read_at > after),
            )
            .limit(limit)
        )
        changes += [StatusChange(*tuple(row)) for row in await conn.execute(query)]
    return changes
