"""Team feeds, for both clients (an admin token): the records, the calls, and the methods
`TidingsClient` and `AsyncTidingsClient` take in. A feed posts every notification of a
channel to a chat service's incoming webhook; the server shows the webhook URL whole only
in the answer to the PUT that set it, and by its origin alone everywhere else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from tidings.client.calls import Call
from tidings.client.models import parse_time

T = TypeVar("T")
FEEDS = "/api/admin/feeds"


@dataclass(frozen=True, slots=True)
class TeamFeed:
    """A channel's feed: `kind` is `slack`, `discord`, `teams` or `mattermost`."""

    channel: str
    kind: str
    webhook_url: str
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> TeamFeed:
        return cls(channel=str(body["channel"]), kind=str(body["kind"]),
                   webhook_url=str(body["webhook_url"]),
                   created_at=parse_time(body.get("created_at")),
                   updated_at=parse_time(body.get("updated_at")))


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One page of the feeds, by channel; `next_cursor` None on the last."""

    items: list[TeamFeed]
    next_cursor: str | None


def _feed_path(channel: str) -> str:
    return f"/api/admin/channels/{quote(channel, safe='')}/feed"


def _decode_feed(response: httpx.Response) -> TeamFeed:
    return TeamFeed.from_json(response.json())


def _decode_page(response: httpx.Response) -> FeedPage:
    body = response.json()
    return FeedPage([TeamFeed.from_json(item) for item in body["items"]],
                    body.get("next_cursor"))


def put_feed(channel: str, kind: str, webhook_url: str) -> Call[TeamFeed]:
    return Call("PUT", _feed_path(channel), _decode_feed,
                json={"kind": kind, "webhook_url": webhook_url})


def get_feed(channel: str) -> Call[TeamFeed]:
    return Call("GET", _feed_path(channel), _decode_feed)


def delete_feed(channel: str) -> Call[None]:
    return Call("DELETE", _feed_path(channel), lambda _r: None)


def feeds_page(limit: int, cursor: str | None) -> Call[FeedPage]:
    params: dict[str, str | int] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
    return Call("GET", FEEDS, _decode_page, params=params)


class FeedMethods:
    """The blocking client's team-feed methods (role `admin`)."""

    def _send(self, call: Call[T]) -> T:
        raise NotImplementedError

    def put_feed(self, channel: str, *, kind: str, webhook_url: str) -> TeamFeed:
        """Set or replace `channel`'s feed; the answer holds the whole URL."""
        return self._send(put_feed(channel, kind, webhook_url))

    def get_feed(self, channel: str) -> TeamFeed:
        """`channel`'s feed, its URL shown by its origin; `NotFound` without one."""
        return self._send(get_feed(channel))

    def feeds(self, *, limit: int = 20, cursor: str | None = None) -> FeedPage:
        """One page of every feed, by channel (URLs shown by their origin)."""
        return self._send(feeds_page(limit, cursor))

    def delete_feed(self, channel: str) -> None:
        """Stop posting `channel`'s notifications; `NotFound` without a feed."""
        self._send(delete_feed(channel))


class AsyncFeedMethods:
    """As `FeedMethods`, awaited."""

    async def _send(self, call: Call[T]) -> T:
        raise NotImplementedError

    async def put_feed(self, channel: str, *, kind: str, webhook_url: str) -> TeamFeed:
        return await self._send(put_feed(channel, kind, webhook_url))

    async def get_feed(self, channel: str) -> TeamFeed:
        return await self._send(get_feed(channel))

    async def feeds(self, *, limit: int = 20, cursor: str | None = None) -> FeedPage:
        return await self._send(feeds_page(limit, cursor))

    async def delete_feed(self, channel: str) -> None:
        await self._send(delete_feed(channel))
