"""SQL for topic-channel subscriptions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.topics import ChannelSize, Subscriber, Subscription
from tidings.store.database import upsert_into
from tidings.store.reference_tables import subscriptions

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


# -- producer-managed topics: every query below reads one index (the primary key on
# (user_id, channel), or ix_subscriptions_channel on (channel, user_id)).


async def subscribe_users(conn: AsyncConnection, channel: str, user_ids: Sequence[str],
                          now: datetime) -> int:
    """Subscribe these users to `channel`; how many were not subscribed already."""
    added = 0
    for start in range(0, len(user_ids), INSERT_SLICE):
        stmt = upsert_into(conn, subscriptions).values([
            {"user_id": user_id, "channel": channel, "created_at": now}
            for user_id in user_ids[start : start + INSERT_SLICE]
        ])
        result = await conn.execute(
            stmt.on_conflict_do_nothing(index_elements=["user_id", "channel"])
            .returning(subscriptions.c.user_id))
        added += len(result.all())
    return added


async def unsubscribe_users(conn: AsyncConnection, channel: str,
                            user_ids: Sequence[str]) -> int:
    """End these users' subscriptions to `channel`; how many there were."""
    removed = 0
    for start in range(0, len(user_ids), LOOKUP_SLICE):
        result = await conn.execute(
            subscriptions.delete()
            .where(subscriptions.c.channel == channel,
                   subscriptions.c.user_id.in_(user_ids[start : start + LOOKUP_SLICE]))
            .returning(subscriptions.c.user_id))
        removed += len(result.all())
    return removed


async def subscribed_among(conn: AsyncConnection, channel: str,
                           user_ids: Sequence[str]) -> set[str]:
    """Which of these users are subscribed to `channel`."""
    found: set[str] = set()
    for start in range(0, len(user_ids), LOOKUP_SLICE):
        result = await conn.execute(
            sa.select(subscriptions.c.user_id)
            .where(subscriptions.c.channel == channel,
                   subscriptions.c.user_id.in_(user_ids[start : start + LOOKUP_SLICE])))
        found.update(result.scalars())
    return found


async def counts_of_users(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, int]:
    """How many subscriptions each of these users has (users with none are left out)."""
    found: dict[str, int] = {}
    for start in range(0, len(user_ids), LOOKUP_SLICE):
        result = await conn.execute(
            sa.select(subscriptions.c.user_id, sa.func.count())
            .where(subscriptions.c.user_id.in_(user_ids[start : start + LOOKUP_SLICE]))
            .group_by(subscriptions.c.user_id))
        found.update((user_id, int(count)) for user_id, count in result)
    return found


def subscribers_page_query(channel: str, after: str | None, limit: int) -> sa.Select[Any]:
    """A channel's subscribers by user id, after `after`: a range of
    ix_subscriptions_channel."""
    query = (sa.select(subscriptions.c.user_id, subscriptions.c.created_at)
             .where(subscriptions.c.channel == channel)
             .order_by(subscriptions.c.user_id).limit(limit))
    return query if after is None else query.where(subscriptions.c.user_id > after)


async def subscribers_page(conn: AsyncConnection, channel: str, after: str | None,
                           limit: int) -> list[Subscriber]:
    result = await conn.execute(subscribers_page_query(channel, after, limit))
    return [Subscriber(user_id, since) for user_id, since in result]


def channels_page_query(after: str | None, limit: int) -> sa.Select[Any]:
    """Channels by name with their subscriber counts, after `after`: read in the order of
    ix_subscriptions_channel, so PostgreSQL counts each group off the index."""
    query = (sa.select(subscriptions.c.channel, sa.func.count())
             .group_by(subscriptions.c.channel)
             .order_by(subscriptions.c.channel).limit(limit))
    return query if after is None else query.where(subscriptions.c.channel > after)


async def channels_page(conn: AsyncConnection, after: str | None,
                        limit: int) -> list[ChannelSize]:
    result = await conn.execute(channels_page_query(after, limit))
    return [ChannelSize(channel, int(count)) for channel, count in result]


async def subscriptions_of(conn: AsyncConnection, user_id: str) -> list[Subscription]:
    """A user's subscriptions by channel (at most the per-user cap of them)."""
    result = await conn.execute(
        sa.select(subscriptions.c.channel, subscriptions.c.created_at)
        .where(subscriptions.c.user_id == user_id)
        .order_by(subscriptions.c.channel))
    return [Subscription(channel, since) for channel, since in result]
