"""SQL for per-user notification preferences."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.model import WILDCARD
from tidings.store.database import Database
from tidings.store.tables import preferences

LOOKUP_SLICE = 500


async def list_for_user(conn: AsyncConnection, user_id: str) -> list[Row[Any]]:
    query = (
        sa.select(preferences)
        .where(preferences.c.user_id == user_id)
        .order_by(preferences.c.channel, preferences.c.notification_type)
    )
    return list(await conn.execute(query))


async def upsert_many(
    db: Database, conn: AsyncConnection, user_id: str, items: Sequence[dict[str, Any]],
    now: datetime,
) -> list[Row[Any]]:
    stored = []
    for item in items:
        values = {**item, "user_id": user_id, "created_at": now, "updated_at": now}
        stmt = db.insert(preferences).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "channel", "notification_type"],
            set_={
                "email_enabled": stmt.excluded.email_enabled,
                "push_enabled": stmt.excluded.push_enabled,
                "in_app_enabled": stmt.excluded.in_app_enabled,
                "updated_at": stmt.excluded.updated_at,
            },
        ).returning(*preferences.c)
        stored.append((await conn.execute(stmt)).one())
    return stored


async def candidates_for(
    conn: AsyncConnection, user_ids: Sequence[str], channel: str, type_: str
) -> list[Row[Any]]:
    """Every row that could apply to (channel, type) for these users: exact or wildcard."""
    rows: list[Row[Any]] = []
    for start in range(0, len(user_ids), LOOKUP_SLICE):
        query = sa.select(preferences).where(
            preferences.c.user_id.in_(user_ids[start : start + LOOKUP_SLICE]),
            preferences.c.channel.in_([channel, WILDCARD]),
            preferences.c.notification_type.in_([type_, WILDCARD]),
        )
        rows.extend(await conn.execute(query))
    return rows
