"""What a node reads from the database to keep its own sockets live while the fan-out
between nodes (Redis) is down: what became visible, and which statuses moved, after a
watermark, for the users it holds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.crypto.cipher import FieldCipher
from tidings.domain.notification import Notification, StatusChange
from tidings.store import notifications as notification_store
from tidings.store.tables import notifications

# Users per query: keeps the IN list under every driver's parameter limit.
USERS_PER_QUERY = 500


def _slices(conn: AsyncConnection,
            user_ids: Sequence[str]) -> Iterator[sa.ColumnElement[bool]]:
    """The user condition of each query. PostgreSQL takes all the users in one array
    parameter (`= ANY`): one query per poll and one parameter, where 100,000 held users
    made 200 queries of 500 bound parameters each (SQLite keeps the slices)."""
    if conn.dialect.name == "postgresql":
        users = sa.bindparam("users", list(user_ids), type_=sa.ARRAY(sa.String))
        yield notifications.c.user_id == sa.any_(users)
        return
    for start in range(0, len(user_ids), USERS_PER_QUERY):
        yield notifications.c.user_id.in_(user_ids[start:start + USERS_PER_QUERY])


@dataclass(frozen=True, slots=True)
class Visible:
    """What a poll found, and up to when it is complete: `complete_until` is `now` unless
    a slice hit its limit, then the last instant that slice returned."""

    notifications: list[Notification]
    complete_until: datetime


async def visible_since(
    conn: AsyncConnection, user_ids: Sequence[str], after: datetime, now: datetime,
    limit: int, *, cipher: FieldCipher | None,
) -> Visible:
    """In-app notifications of these users that became visible in (after, now], oldest
    first, with their deliveries; at most `limit` per query (one slice of users)."""
    found: list[Notification] = []
    complete_until = now
    for users in _slices(conn, user_ids):
        query = (
            sa.select(notifications.c.id, notifications.c.visible_at)
            .where(
                users,
                notifications.c.in_app.is_(True),
                notifications.c.visible_at > after,
                notifications.c.visible_at <= now,
                notification_store.live(now),
            )
            .order_by(notifications.c.visible_at, notifications.c.id)
            .limit(limit)
        )
        rows = list(await conn.execute(query))
        if len(rows) >= limit:
            complete_until = min(complete_until, rows[-1].visible_at)
        found += await notification_store.get_many(conn, [row.id for row in rows],
                                                   cipher=cipher)
    found.sort(key=lambda note: note.position)
    return Visible(await notification_store.with_deliveries(conn, found), complete_until)


async def statuses_since(
    conn: AsyncConnection, user_ids: Sequence[str], after: datetime, limit: int,
) -> list[StatusChange]:
    """Notifications of these users delivered or read after `after`, as status changes."""
    changes: list[StatusChange] = []
    columns = (notifications.c.id, notifications.c.user_id, notifications.c.status,
               notifications.c.delivered_at, notifications.c.read_at)
    for users in _slices(conn, user_ids):
        query = (
            sa.select(*columns)
            .where(
                users,
                sa.or_(notifications.c.delivered_at > after, notifications.c.read_at > after),
            )
            .limit(limit)
        )
        changes += [StatusChange(*tuple(row)) for row in await conn.execute(query)]
    return changes
