"""SQL for topic-channel subscriptions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.database import upsert_into
from tidings.store.tables import subscriptions

# Rows per INSERT and ids per IN (...): under every driver's parameter limit.
INSERT_SLICE = 500
LOOKUP_SLICE = 500


async def add(conn: AsyncConnection, pairs: Sequence[tuple[str, str]], now: datetime) -> None:
    """Subscribe (user_id, channel) pairs; ones that already exist stay as they are."""
    for start in range(0, len(pairs), INSERT_SLICE):
        stmt = upsert_into(conn, subscriptions).values([
            {"user_id": user_id, "channel": channel, "created_at": now}
            for user_id, channel in pairs[start : start + INSERT_SLICE]
        ])
        await conn.execute(stmt.on_conflict_do_nothing(index_elements=["user_id", "channel"]))


async def remove(conn: AsyncConnection, user_id: str, channels: Sequence[str]) -> None:
    if not channels:
        return
    await conn.execute(
        subscriptions.delete().where(
            subscriptions.c.user_id == user_id, subscriptions.c.channel.in_(channels)
        )
    )


async def channels_of_users(
    conn: AsyncConnection, user_ids: Iterable[str]
) -> dict[str, set[str]]:
    users = sorted(user_ids)
    found: dict[str, set[str]] = {}
    for start in range(0, len(users), LOOKUP_SLICE):
        result = await conn.execute(
            sa.select(subscriptions.c.user_id, subscriptions.c.channel).where(
                subscriptions.c.user_id.in_(users[start : start + LOOKUP_SLICE])
            )
        )
        for user_id, channel in result:
            found.setdefault(user_id, set()).add(channel)
    return found


async def subscribers_of(conn: AsyncConnection, channel: str) -> list[str]:
    result = await conn.execute(
        sa.select(subscriptions.c.user_id)
        .where(subscriptions.c.channel == channel)
        .order_by(subscriptions.c.user_id)
    )
    return list(result.scalars())


async def subscriber_counts(conn: AsyncConnection, channels: Iterable[str]) -> dict[str, int]:
    """How many users each channel has (channels without any are left out)."""
    result = await conn.execute(
        sa.select(subscriptions.c.channel, sa.func.count())
        .where(subscriptions.c.channel.in_(sorted(set(channels))))
        .group_by(subscriptions.c.channel)
    )
    return {channel: int(count) for channel, count in result}
