"""SQL for topic-channel subscriptions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.database import Database
from tidings.store.tables import subscriptions


async def add(
    db: Database, conn: AsyncConnection, user_id: str, channels: Sequence[str], now: datetime
) -> None:
    if not channels:
        return
    stmt = db.insert(subscriptions).values(
        [{"user_id": user_id, "channel": channel, "created_at": now} for channel in channels]
    )
    await conn.execute(stmt.on_conflict_do_nothing(index_elements=["user_id", "channel"]))


async def remove(conn: AsyncConnection, user_id: str, channels: Sequence[str]) -> None:
    if not channels:
        return
    await conn.execute(
        subscriptions.delete().where(
            subscriptions.c.user_id == user_id, subscriptions.c.channel.in_(channels)
        )
    )


async def channels_of(conn: AsyncConnection, user_id: str) -> list[str]:
    result = await conn.execute(
        sa.select(subscriptions.c.channel)
        .where(subscriptions.c.user_id == user_id)
        .order_by(subscriptions.c.channel)
    )
    return list(result.scalars())


async def count_for_user(conn: AsyncConnection, user_id: str) -> int:
    result = await conn.execute(
        sa.select(sa.func.count()).select_from(subscriptions).where(
            subscriptions.c.user_id == user_id
        )
    )
    return int(result.scalar_one())


async def subscribers_of(conn: AsyncConnection, channel: str) -> list[str]:
    result = await conn.execute(
        sa.select(subscriptions.c.user_id)
        .where(subscriptions.c.channel == channel)
        .order_by(subscriptions.c.user_id)
    )
    return list(result.scalars())
