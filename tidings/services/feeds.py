"""Team feeds: an admin points a channel at a chat service's incoming webhook; from then
on every notification created on the channel is posted there once (by the queue, with
retries and dead letters like any delivery), whatever its recipients' preferences.

The URL is checked when set (http(s); unless private targets are allowed, a host that is
and resolves only to public addresses) and again by the sender before each post.
"""

from __future__ import annotations

from dataclasses import dataclass

from tidings.delivery.targets import check_target_url
from tidings.domain.errors import NotFound
from tidings.domain.feed import ChannelFeed, FeedDraft, decode_feed_cursor
from tidings.domain.model import utcnow
from tidings.services.feed_cache import SCOPE, FeedCache
from tidings.services.invalidation import Invalidation
from tidings.store import feeds as store
from tidings.store.database import Database


@dataclass(frozen=True, slots=True)
class FeedPage:
    items: list[ChannelFeed]
    next_cursor: str | None


class FeedService:
    def __init__(self, db: Database, *, allow_private: bool, cache: FeedCache | None = None,
                 invalidation: Invalidation | None = None) -> None:
        self._db = db
        self._allow_private = allow_private
        # The creates' view of which channels have a feed: dropped here after a change,
        # and in the other processes through `invalidation`.
        self._cache = cache
        self._invalidation = invalidation

    def _changed(self, channel: str) -> None:
        if self._cache is not None:
            self._cache.forget()
        if self._invalidation is not None:
            self._invalidation.invalidate(SCOPE, channel)

    async def put(self, channel: str, draft: FeedDraft) -> ChannelFeed:
        await check_target_url(draft.webhook_url, allow_private=self._allow_private,
                               field="webhook_url")
        async with self._db.begin() as conn:
            feed = await store.put(conn, channel, draft.kind, draft.webhook_url, utcnow())
        self._changed(channel)
        return feed

    async def get(self, channel: str) -> ChannelFeed:
        async with self._db.begin() as conn:
            feed = await store.get(conn, channel)
        if feed is None:
            raise NotFound(f"channel {channel!r} has no feed")
        return feed

    async def page(self, limit: int, cursor: str | None) -> FeedPage:
        """The feeds by channel; the cursor is the last channel of the previous page."""
        after = decode_feed_cursor(cursor) if cursor else None
        async with self._db.begin() as conn:
            items = await store.page(conn, limit, after)
        more = len(items) > limit
        items = items[:limit]
        return FeedPage(items, items[-1].channel if more and items else None)

    async def delete(self, channel: str) -> None:
        async with self._db.begin() as conn:
            if not await store.delete(conn, channel):
                raise NotFound(f"channel {channel!r} has no feed")
        self._changed(channel)
