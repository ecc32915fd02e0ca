"""Topics managed by producers, for both clients: the records, the calls, and the methods
`TidingsClient` and `AsyncTidingsClient` take in (each sends the calls its own way)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from tidings.client.calls import Call
from tidings.client.models import parse_time

T = TypeVar("T")
PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class SubscriberCounts:
    """What a change did: subscriptions made and ended (a repeat answers 0 and 0)."""

    added: int
    removed: int


@dataclass(frozen=True, slots=True)
class Subscriber:
    user_id: str
    since: datetime


@dataclass(frozen=True, slots=True)
class ChannelSize:
    channel: str
    subscribers: int


@dataclass(frozen=True, slots=True)
class Subscription:
    channel: str
    since: datetime


@dataclass(frozen=True, slots=True)
class NamePage(Generic[T]):
    """One page of a list by name; `next_cursor` None on the last."""

    items: list[T]
    next_cursor: str | None


def _since(value: Any) -> datetime:
    when = parse_time(value)
    if when is None:
        raise ValueError("an answer without 'since'")
    return when


def _channel_path(channel: str) -> str:
    return f"/api/channels/{quote(channel, safe='')}/subscribers"


def _params(limit: int, cursor: str | None) -> dict[str, str | int]:
    return {"limit": limit, **({"cursor": cursor} if cursor else {})}


def change_subscribers(channel: str, add: Iterable[str], remove: Iterable[str]
                       ) -> Call[SubscriberCounts]:
    body: dict[str, list[str]] = {"add": list(add), "remove": list(remove)}
    return Call("PUT", _channel_path(channel), _decode_counts,
                json={name: ids for name, ids in body.items() if ids})


def subscribers_page(channel: str, limit: int, cursor: str | None
                     ) -> Call[NamePage[Subscriber]]:
    return Call("GET", _channel_path(channel), _decode_subscribers,
                params=_params(limit, cursor))


def channels_page(limit: int, cursor: str | None) -> Call[NamePage[ChannelSize]]:
    return Call("GET", "/api/channels", _decode_channels, params=_params(limit, cursor))


def subscriptions() -> Call[list[Subscription]]:
    return Call("GET", "/api/subscriptions", lambda r: [
        Subscription(str(item["channel"]), _since(item["since"]))
        for item in r.json()["items"]])


def _decode_counts(response: httpx.Response) -> SubscriberCounts:
    body = response.json()
    return SubscriberCounts(int(body["added"]), int(body["removed"]))


def _decode_subscribers(response: httpx.Response) -> NamePage[Subscriber]:
    body = response.json()
    return NamePage([Subscriber(str(item["user_id"]), _since(item["since"]))
                     for item in body["items"]], body.get("next_cursor"))


def _decode_channels(response: httpx.Response) -> NamePage[ChannelSize]:
    body = response.json()
    return NamePage([ChannelSize(str(item["channel"]), int(item["subscribers"]))
                     for item in body["items"]], body.get("next_cursor"))


class TopicMethods:
    """The blocking client's topic methods (role `service` or `admin`, except
    `subscriptions`)."""

    def _send(self, call: Call[T]) -> T:
        raise NotImplementedError

    def change_subscribers(self, channel: str, *, add: Iterable[str] = (),
                           remove: Iterable[str] = ()) -> SubscriberCounts:
        """Subscribe `add` to `channel` and unsubscribe `remove` (at most 10,000 ids in
        all), in one transaction. Over the per-user cap: `SubscriptionLimit` naming the
        users, and nothing changed."""
        return self._send(change_subscribers(channel, add, remove))

    def subscribers_page(self, channel: str, *, limit: int = 50,
                         cursor: str | None = None) -> NamePage[Subscriber]:
        return self._send(subscribers_page(channel, limit, cursor))

    def subscribers(self, channel: str, *, page_size: int = PAGE_SIZE
                    ) -> Iterator[Subscriber]:
        """Every subscriber of `channel`, by user id, page by page."""
        cursor: str | None = None
        while True:
            page = self.subscribers_page(channel, limit=page_size, cursor=cursor)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def channels_page(self, *, limit: int = 50,
                      cursor: str | None = None) -> NamePage[ChannelSize]:
        return self._send(channels_page(limit, cursor))

    def channels(self, *, page_size: int = PAGE_SIZE) -> Iterator[ChannelSize]:
        """Every topic with subscribers, by name, with how many."""
        cursor: str | None = None
        while True:
            page = self.channels_page(limit=page_size, cursor=cursor)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def subscriptions(self) -> list[Subscription]:
        """The caller's own topic subscriptions, whoever made them."""
        return self._send(subscriptions())


class AsyncTopicMethods:
    """As `TopicMethods`, awaited."""

    async def _send(self, call: Call[T]) -> T:
        raise NotImplementedError

    async def change_subscribers(self, channel: str, *, add: Iterable[str] = (),
                                 remove: Iterable[str] = ()) -> SubscriberCounts:
        return await self._send(change_subscribers(channel, add, remove))

    async def subscribers_page(self, channel: str, *, limit: int = 50,
                               cursor: str | None = None) -> NamePage[Subscriber]:
        return await self._send(subscribers_page(channel, limit, cursor))

    async def subscribers(self, channel: str, *, page_size: int = PAGE_SIZE
                          ) -> AsyncIterator[Subscriber]:
        cursor: str | None = None
        while True:
            page = await self.subscribers_page(channel, limit=page_size, cursor=cursor)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def channels_page(self, *, limit: int = 50,
                            cursor: str | None = None) -> NamePage[ChannelSize]:
        return await self._send(channels_page(limit, cursor))

    async def channels(self, *, page_size: int = PAGE_SIZE) -> AsyncIterator[ChannelSize]:
        cursor: str | None = None
        while True:
            page = await self.channels_page(limit=page_size, cursor=cursor)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def subscriptions(self) -> list[Subscription]:
        return await self._send(subscriptions())
