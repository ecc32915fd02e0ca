"""The replay of missed notifications for many sockets in one statement (each user's own
and the broadcasts, with the user's state of each).

Each ask names a user, a cursor (visible_at, id) after which it wants that user's in-app
notifications, and the instant `until` up to which they count (the moment its replay
began). The asks travel as a VALUES list joined to the notifications, and a window
function numbers each ask's rows so that every ask gets at most `limit`, oldest first:
the same rows, in the same order, as a query of its own with that cursor and `LIMIT`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.crypto.cipher import FieldCipher
from tidings.domain.notification import Notification
from tidings.store import broadcasts as broadcast_store
from tidings.store import notifications as notification_store
from tidings.store.columns import UTCDateTime
from tidings.store.tables import broadcasts, notifications

# Asks per statement: 5 parameters each stays far under every driver's limit (32k), and
# SQLite's default limit on VALUES rows is 500.
ASKS_PER_QUERY = 400


@dataclass(frozen=True, slots=True)
class ReplayAsk:
    user_id: str
    after: tuple[datetime, str]  # (visible_at, id) of the last notification already sent
    until: datetime  # visible by this instant (when the replay began)


# Statements are built for a few sizes only (asks padded up to the next one), with named
# parameters: SQLAlchemy then compiles each size once, where a statement with its values
# inline would be compiled anew for every batch (~0.25 ms per ask, as much as the query).
SIZES = (1, 4, 16, 64, 160, ASKS_PER_QUERY)
# A user id no token can carry (`sub` is never empty): the padding asks match nothing.
NOBODY = ""


def _asks_table(size: int) -> sa.CTE:
    # A UNION ALL of one-row SELECTs, not VALUES: SQLAlchemy caches the compiled form of
    # the former only (and SQLite accepts up to 500 of them in one compound SELECT).
    rows = [
        sa.select(
            sa.literal(k, sa.Integer()).label("k"),
            sa.bindparam(f"u{k}", type_=sa.String()).label("user_id"),
            sa.bindparam(f"a{k}", type_=UTCDateTime()).label("after_at"),
            sa.bindparam(f"i{k}", type_=sa.String()).label("after_id"),
            sa.bindparam(f"t{k}", type_=UTCDateTime()).label("until_at"),
        )
        for k in range(size)
    ]
    return sa.union_all(*rows).cte("asks")


@functools.cache
def _query(size: int) -> sa.Select[Any]:
    """Each ask's own notifications and the broadcasts (with the ask's user's state of
    them), ranked together by position."""
    table = _asks_table(size)
    position = (notifications.c.visible_at, notifications.c.id)
    own = (
        sa.select(table.c.k, *notification_store.COLUMNS)
        .select_from(notifications.join(table, sa.and_(
            notifications.c.user_id == table.c.user_id,
            sa.tuple_(*position) > sa.tuple_(table.c.after_at, table.c.after_id),
            notifications.c.visible_at <= table.c.until_at,
        )))
        .where(notifications.c.in_app.is_(True),
               notification_store.live(table.c.until_at))
    )
    shared_at = (broadcasts.c.visible_at, broadcasts.c.notification_id)
    half = broadcast_store.shared_half(table.c.user_id, (table, sa.and_(
        sa.tuple_(*shared_at) > sa.tuple_(table.c.after_at, table.c.after_id),
        broadcasts.c.visible_at <= table.c.until_at)))
    shared = (
        sa.select(table.c.k, *half.selected(notification_store.FIELDS))
        .select_from(half.source)
        .where(*half.where, half.cols.in_app.is_(True),
               notification_store.live(table.c.until_at, half.cols))
    )
    both = sa.union_all(own, shared).subquery("both")
    rank = sa.func.row_number().over(partition_by=both.c.k,
                                     order_by=(both.c.visible_at, both.c.id))
    ranked = sa.select(both.c.k, rank.label("rank"),
                       *(both.c[name] for name in notification_store.FIELDS)
                       ).subquery("ranked")
    return (
        sa.select(*ranked.c)
        .where(ranked.c.rank <= sa.bindparam("limit", type_=sa.Integer()))
        .order_by(ranked.c.k, ranked.c.rank)
    )


def _parameters(asks: Sequence[ReplayAsk], size: int, limit: int) -> dict[str, object]:
    values: dict[str, object] = {"limit": limit}
    for k in range(size):
        ask = asks[k] if k < len(asks) else None
        if ask is None:
            values.update({f"u{k}": NOBODY, f"a{k}": asks[0].until, f"i{k}": "~",
                           f"t{k}": asks[0].until})
        else:
            values.update({f"u{k}": ask.user_id, f"a{k}": ask.after[0],
                           f"i{k}": ask.after[1], f"t{k}": ask.until})
    return values


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
        size = next(size for size in SIZES if size >= len(part))
        rows = await conn.execute(_query(size), _parameters(part, size, limit))
        for row in rows:
            k, _rank, *values = tuple(row)
            found[start + k].append(notification_store.record_of(values, cipher))
    return found
