"""SQL for team feeds (one incoming webhook per channel)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.feed import ChannelFeed, FeedKind
from tidings.store.database import upsert_into
from tidings.store.reference_tables import channel_feeds

_COLUMNS = (channel_feeds.c.channel, channel_feeds.c.kind, channel_feeds.c.webhook_url,
            channel_feeds.c.created_at, channel_feeds.c.updated_at)


def _record(row: Sequence[Any]) -> ChannelFeed:
    channel, kind, url, created_at, updated_at = row
    return ChannelFeed(channel, FeedKind(kind), url, created_at, updated_at)


async def put(conn: AsyncConnection, channel: str, kind: FeedKind, url: str,
              now: datetime) -> ChannelFeed:
    """Set or replace the channel's feed; `created_at` stays that of the first."""
    stmt = upsert_into(conn, channel_feeds).values(
        channel=channel, kind=kind.value, webhook_url=url, created_at=now, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["channel"],
        set_={name: stmt.excluded[name] for name in ("kind", "webhook_url", "updated_at")},
    ).returning(*_COLUMNS)
    return _record((await conn.execute(stmt)).one())


async def get(conn: AsyncConnection, channel: str) -> ChannelFeed | None:
    row = (await conn.execute(
        sa.select(*_COLUMNS).where(channel_feeds.c.channel == channel))).one_or_none()
    return _record(row) if row is not None else None


async def page(conn: AsyncConnection, limit: int, after: str | None) -> list[ChannelFeed]:
    """By channel, after the channel `after`; `limit + 1` records tell whether another
    page exists."""
    query = sa.select(*_COLUMNS)
    if after is not None:
        query = query.where(channel_feeds.c.channel > after)
    query = query.order_by(channel_feeds.c.channel).limit(limit + 1)
    return [_record(row) for row in await conn.execute(query)]


async def delete(conn: AsyncConnection, channel: str) -> bool:
    result = await conn.execute(channel_feeds.delete().where(channel_feeds.c.channel == channel))
    return bool(result.rowcount)


async def channels(conn: AsyncConnection) -> list[str]:
    """Every channel that has a feed."""
    return [row.channel for row in await conn.execute(sa.select(channel_feeds.c.channel))]


async def of_channels(conn: AsyncConnection, names: Sequence[str]) -> dict[str, ChannelFeed]:
    """The feeds of these channels (those that have one), for a batch of posts."""
    if not names:
        return {}
    query = sa.select(*_COLUMNS).where(channel_feeds.c.channel.in_(sorted(set(names))))
    return {feed.channel: feed for feed in map(_record, await conn.execute(query))}
