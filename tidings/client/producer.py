"""HTTP clients for producers and for users' own inboxes: `TidingsClient` (blocking, for
scripts, workers and sync web apps) and `AsyncTidingsClient` (asyncio; it never blocks
the event loop). Both send the same `calls`, retrying 429, 502-504 and network failures
by a `RetryPolicy`; every create carries an idempotency key (a UUID4 unless given) that
stays the same across that call's retries, so a retry never creates a second
notification. Failures raise a `TidingsError` subclass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from tidings.client import calls
from tidings.client.calls import Call, Page
from tidings.client.connections import AsyncConnectionMethods, ConnectionMethods
from tidings.client.errors import TidingsError
from tidings.client.feeds import AsyncFeedMethods, FeedMethods
from tidings.client.models import (
    BatchResult,
    CreateResult,
    Notification,
    NotificationRequest,
    Preference,
)
from tidings.client.retry import Attempts, RetryPolicy, failure_of, network_failure
from tidings.client.topics import AsyncTopicMethods, TopicMethods
from tidings.client.type_methods import AsyncTypeMethods, TypeMethods

T = TypeVar("T")
PAGE_SIZE = 100


def _request(type: str, title: str | None, message: str | None, user_id: str | None,
             user_ids: list[str] | None, channel: str | None, priority: str | None,
             data: dict[str, Any] | None, media: list[str] | None,
             scheduled_at: datetime | str | None, template: str | None,
             variables: dict[str, Any] | None, extra: dict[str, Any]) -> NotificationRequest:
    return NotificationRequest(type=type, title=title, message=message, user_id=user_id,
                               user_ids=user_ids, channel=channel, priority=priority,
                               data=data, media=media, scheduled_at=scheduled_at,
                               template=template, variables=variables, extra=extra)


def _http_options(base_url: str, token: str, timeout: float) -> dict[str, Any]:
    return {"base_url": base_url.rstrip("/"), "timeout": timeout,
            "headers": {"Authorization": f"Bearer {token}", "Accept": "application/json"}}


def _outcome(call: Call[T], response: httpx.Response) -> T | TidingsError:
    return call.decode(response) if response.is_success else failure_of(response)


class TidingsClient(TopicMethods, FeedMethods, TypeMethods, ConnectionMethods):
    """The blocking client. Use it as a context manager (or call `close`) so its
    connection pool is released. `timeout` bounds each attempt; `retry` the whole call."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0,
                 retry: RetryPolicy | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.retry = retry or RetryPolicy()
        self._timeout = timeout
        self._http = httpx.Client(transport=transport,
                                  **_http_options(base_url, token, timeout))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call[T]) -> T:
        attempts = Attempts(self.retry)
        while True:
            timeout = attempts.begin(self._timeout)
            try:
                response = self._http.request(
                    call.method, call.path, json=call.json, params=call.params,
                    headers=call.headers(), timeout=timeout)
                result = _outcome(call, response)
            except httpx.TransportError as exc:
                result = network_failure(exc)
            if not isinstance(result, TidingsError):
                return result
            wait = attempts.wait_after(result)
            if wait is None:
                raise result
            time.sleep(wait)  # a sync client: blocking its caller is what it is for

    def notify(self, *, type: str, title: str | None = None, message: str | None = None,
               user_id: str | None = None, user_ids: list[str] | None = None,
               channel: str | None = None, priority: str | None = None,
               data: dict[str, Any] | None = None, media: list[str] | None = None,
               scheduled_at: datetime | str | None = None, template: str | None = None,
               variables: dict[str, Any] | None = None, idempotency_key: str | None = None,
               **extra: Any) -> CreateResult:
        """Create a notification: a `Notification` for `user_id`, `Accepted(count)` for
        `user_ids` or a channel's subscribers. Extra keyword arguments go into the body
        as they are (fields this client does not name yet)."""
        request = _request(type, title, message, user_id, user_ids, channel, priority, data,
                           media, scheduled_at, template, variables, extra)
        return self._send(calls.notify(request, idempotency_key))

    def notify_many(self, requests: Iterable[NotificationRequest | Mapping[str, Any]], *,
                    idempotency_key: str | None = None) -> list[BatchResult]:
        """Create up to 1,000 notifications in one request (`POST
        /api/notifications/batch`): one result per item, in order; an invalid item is a
        `Rejected` and does not stop the others."""
        return self._send(calls.notify_many(requests, idempotency_key))

    def page(self, *, limit: int = 20, cursor: str | None = None,
             **filters: str | bool | None) -> Page:
        """One page of the caller's notifications (filters: status, unread, channel,
        type)."""
        return self._send(calls.page(limit, cursor, filters))

    def list_notifications(self, *, page_size: int = PAGE_SIZE,
                           **filters: str | bool | None) -> Iterator[Notification]:
        """Every notification of the caller matching the filters, newest first, page by
        page as the iteration needs them."""
        cursor: str | None = None
        while True:
            page = self.page(limit=page_size, cursor=cursor, **filters)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def get(self, notification_id: str) -> Notification:
        return self._send(calls.get(notification_id))

    def mark_read(self, notification_id: str) -> Notification:
        """Mark as read (idempotent); answers the notification with `status` `read`."""
        return self._send(calls.mark_read(notification_id))

    def delete(self, notification_id: str) -> None:
        self._send(calls.delete(notification_id))

    def read_all(self, *, channel: str | None = None, type: str | None = None) -> int:
        """Mark every unread notification (of that channel, type) read; how many."""
        return self._send(calls.read_all(channel, type))

    def mark_seen(self, ids: Iterable[str] | None = None) -> int:
        """Mark these notifications (None: all) seen; how many were not seen before."""
        return self._send(calls.mark_seen(ids))

    def archive(self, notification_id: str) -> Notification:
        return self._send(calls.archive(notification_id, True))

    def unarchive(self, notification_id: str) -> Notification:
        return self._send(calls.archive(notification_id, False))

    def cancel(self, notification_id: str) -> Notification:
        """A producer cancels a notification scheduled for later (409 once it is due)."""
        return self._send(calls.cancel(notification_id))

    def cancel_by_key(self, idempotency_key: str) -> int:
        """A producer cancels every not-yet-due copy of its create under that key."""
        return self._send(calls.cancel_by_key(idempotency_key))

    def preferences(self) -> list[Preference]:
        return self._send(calls.preferences())

    def set_preference(self, preference: Preference) -> Preference:
        """Store one preference; flags left None keep their stored value."""
        return self._send(calls.set_preference(preference))

    def set_preferences(self, items: Iterable[Preference]) -> list[Preference]:
        """Store several preferences, all or nothing."""
        return self._send(calls.set_preferences(items))

    def preference_link(self, user_id: str) -> str:
        """The signed URL of `user_id`'s preference centre (needs the service or admin
        role): a page where that user sets media and quiet hours without logging in."""
        return self._send(calls.preference_link(user_id))


class AsyncTidingsClient(AsyncTopicMethods, AsyncFeedMethods, AsyncTypeMethods,
                         AsyncConnectionMethods):
    """The asyncio client: the same operations as `TidingsClient`, awaited. Use it with
    `async with` (or await `aclose`)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0,
                 retry: RetryPolicy | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.retry = retry or RetryPolicy()
        self._timeout = timeout
        self._http = httpx.AsyncClient(transport=transport,
                                       **_http_options(base_url, token, timeout))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        attempts = Attempts(self.retry)
        while True:
            timeout = attempts.begin(self._timeout)
            try:
                response = await self._http.request(
                    call.method, call.path, json=call.json, params=call.params,
                    headers=call.headers(), timeout=timeout)
                result = _outcome(call, response)
            except httpx.TransportError as exc:
                result = network_failure(exc)
            if not isinstance(result, TidingsError):
                return result
            wait = attempts.wait_after(result)
            if wait is None:
                raise result
            await asyncio.sleep(wait)

    async def notify(self, *, type: str, title: str | None = None,
                     message: str | None = None, user_id: str | None = None,
                     user_ids: list[str] | None = None, channel: str | None = None,
                     priority: str | None = None, data: dict[str, Any] | None = None,
                     media: list[str] | None = None,
                     scheduled_at: datetime | str | None = None,
                     template: str | None = None, variables: dict[str, Any] | None = None,
                     idempotency_key: str | None = None, **extra: Any) -> CreateResult:
        """As `TidingsClient.notify`."""
        request = _request(type, title, message, user_id, user_ids, channel, priority, data,
                           media, scheduled_at, template, variables, extra)
        return await self._send(calls.notify(request, idempotency_key))

    async def notify_many(self, requests: Iterable[NotificationRequest | Mapping[str, Any]],
                          *, idempotency_key: str | None = None) -> list[BatchResult]:
        """As `TidingsClient.notify_many`."""
        return await self._send(calls.notify_many(requests, idempotency_key))

    async def page(self, *, limit: int = 20, cursor: str | None = None,
                   **filters: str | bool | None) -> Page:
        return await self._send(calls.page(limit, cursor, filters))

    async def list_notifications(self, *, page_size: int = PAGE_SIZE,
                                 **filters: str | bool | None) -> AsyncIterator[Notification]:
        """As `TidingsClient.list_notifications`, with `async for`."""
        cursor: str | None = None
        while True:
            page = await self.page(limit=page_size, cursor=cursor, **filters)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def get(self, notification_id: str) -> Notification:
        return await self._send(calls.get(notification_id))

    async def mark_read(self, notification_id: str) -> Notification:
        return await self._send(calls.mark_read(notification_id))

    async def delete(self, notification_id: str) -> None:
        await self._send(calls.delete(notification_id))

    async def read_all(self, *, channel: str | None = None, type: str | None = None) -> int:
        return await self._send(calls.read_all(channel, type))

    async def mark_seen(self, ids: Iterable[str] | None = None) -> int:
        return await self._send(calls.mark_seen(ids))

    async def archive(self, notification_id: str) -> Notification:
        return await self._send(calls.archive(notification_id, True))

    async def unarchive(self, notification_id: str) -> Notification:
        return await self._send(calls.archive(notification_id, False))

    async def cancel(self, notification_id: str) -> Notification:
        return await self._send(calls.cancel(notification_id))

    async def cancel_by_key(self, idempotency_key: str) -> int:
        return await self._send(calls.cancel_by_key(idempotency_key))

    async def preferences(self) -> list[Preference]:
        return await self._send(calls.preferences())

    async def set_preference(self, preference: Preference) -> Preference:
        return await self._send(calls.set_preference(preference))

    async def set_preferences(self, items: Iterable[Preference]) -> list[Preference]:
        return await self._send(calls.set_preferences(items))

    async def preference_link(self, user_id: str) -> str:
        return await self._send(calls.preference_link(user_id))
