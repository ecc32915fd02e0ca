"""The replay of missed notifications for many sockets in one statement.

Each ask names a user, a cursor (visible_at, id) after which it wants that user's in-app
notifications, and the instant `until` up to which they count (the moment its replay
began). The asks travel as a VALUES list joined to the notifications, and a window
function numbers each ask's rows so that every ask gets at most `limit`, oldest first:
the same rows, in the same order, as a query of its own with that cursor and `LIMIT`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.crypto.cipher import FieldCipher
from tidings.domain.notification import Notification
from tidings.store import notifications as notification_store
from tidings.store.tables import UTCDateTime, notifications

# Asks per statement: 5 parameters each stays far under every driver's limit (32k), and
# SQLite's default limit on VALUES rows is 500.
ASKS_PER_QUERY = 400


@dataclass(frozen=True, slots=True)
class ReplayAsk:
    user_id: str
    after: tuple[datetime, str]  # (visible_at, id) of the last notification already sent
    until: datetime  # visible by this instant (when the replay began)


def _asks_table(asks: Sequence[ReplayAsk]) -> sa.CTE:
    columns = (
        sa.column("k", sa.Integer),
        sa.column("user_id", sa.String),
        sa.column("after_at", UTCDateTime()),
        sa.column("after_id", sa.String),
        sa.column("until_at", UTCDateTime()),
    )
    rows = [(k, ask.user_id, ask.after[0], ask.after[1], ask.until)
            for k, ask in enumerate(asks)]
    return sa.values(*columns, name="asks").data(rows).cte("asks")


def _query(asks: Sequence[ReplayAsk], limit: int) -> sa.Select[tuple[object, ...]]:
    table = _asks_table(asks)
    position = (notifications.c.visible_at, notifications.c.id)
    rank = sa.func.row_number().over(partition_by=table.c.k, order_by=position)
    ranked = (
        sa.select(table.c.k, rank.label("rank"), *notification_store.COLUMNS)
        .select_from(notifications.join(table, sa.and_(
            notifications.c.user_id == table.c.user_id,
            sa.tuple_(*position) > sa.tuple_(table.c.after_at, table.c.after_id),
            notifications.c.visible_at <= table.c.until_at,
        )))
        .where(notifications.c.in_app.is_(True))
        .subquery("ranked")
    )
    return (
        sa.select(*ranked.c)
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.k, ranked.c.rank)
    )


async def in_app_after_many(
    conn: AsyncConnection, asks: Sequence[ReplayAsk], limit: int,
    *, cipher: FieldCipher | None,
) -> list[list[Notification]]:
    """For each ask, in the order given, at most `limit` of its user's in-app
    notifications after its cursor and visible by its `until`, oldest first (deliveries
    not attached)."""
    found: list[list[Notification]] = [[] for _ in asks]
    for start in range(0, len(asks), ASKS_PER_QUERY):
        part = asks[start:start + ASKS_PER_QUERY]
        for k, _rank, *values in await conn.execute(_query(part, limit)):
            found[start + k].append(notification_store.record_of(values, cipher))
    return found
