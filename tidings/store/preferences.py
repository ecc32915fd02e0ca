"""SQL for per-user notification preferences."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.preference import FLAGS, Preference, PreferenceChange
from tidings.store.database import upsert_into
from tidings.store.reference_tables import preferences
from tidings.store.tables import notifications

LOOKUP_SLICE = 500
_FLAGS = FLAGS
_COLUMNS = (preferences.c.channel, preferences.c.notification_type,
            *(preferences.c[flag] for flag in _FLAGS))


def _record(row: Row[Any]) -> Preference:
    return Preference(*tuple(row))


async def list_for_user(conn: AsyncConnection, user_id: str) -> list[Preference]:
    query = (
        sa.select(*_COLUMNS)
        .where(preferences.c.user_id == user_id)
        .order_by(preferences.c.channel, preferences.c.notification_type)
    )
    return [_record(row) for row in await conn.execute(query)]


async def upsert_many(
    conn: AsyncConnection, user_id: str, changes: Sequence[PreferenceChange], now: datetime
) -> list[Preference]:
    """Write each change in one statement: only the flags it gives are updated, so
    concurrent changes of different flags of one row all take effect."""
    stored = []
    for change in changes:
        given = change.given()
        stmt = upsert_into(conn, preferences).values(
            user_id=user_id, channel=change.channel,
            notification_type=change.notification_type,
            **{flag: given.get(flag, True) for flag in _FLAGS},
            created_at=now, updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "channel", "notification_type"],
            set_={name: stmt.excluded[name] for name in (*given, "updated_at")},
        ).returning(*_COLUMNS)
        stored.append(_record((await conn.execute(stmt)).one()))
    return stored


async def rows_of(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, list[Preference]]:
    """Every row of these users, by user (none: absent)."""
    found: dict[str, list[Preference]] = {}
    for start in range(0, len(user_ids), LOOKUP_SLICE):
        query = sa.select(preferences.c.user_id, *_COLUMNS).where(
            preferences.c.user_id.in_(user_ids[start : start + LOOKUP_SLICE]))
        for user_id, *values in await conn.execute(query):
            found.setdefault(user_id, []).append(Preference(*values))
    return found


async def topics_received(conn: AsyncConnection, user_id: str, since: datetime,
                          limit: int) -> list[tuple[str, str]]:
    """The distinct (channel, type) of the user's notifications created since `since`
    (scheduled ones included: they were sent to the user), at most `limit` of them."""
    query = (
        sa.select(notifications.c.channel, notifications.c.type)
        .where(notifications.c.user_id == user_id, notifications.c.created_at >= since)
        .distinct()
        .order_by(notifications.c.channel, notifications.c.type)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in await conn.execute(query)]
