"""The live inbox of one user over Socket.IO: `async with Inbox(url, token) as inbox:
async for n in inbox: ...`, or `async for n in inbox(url, token)`.

Guarantees a caller may rely on:
- it connects, and after a drop reconnects by itself with exponential backoff and
  jitter, until closed; only a refused token (`AuthenticationError`) ends the iteration;
- on every reconnect it asks for what became visible since the newest notification seen
  (minus `overlap` seconds against clock skew and ties), so nothing created while it was
  away is lost;
- it never yields the same id twice while the id is within the last `memory` ids seen.
On the first connect it replays from `since` when given; without it, it starts live.
Needs the Socket.IO client extra: `pip install 'tidings[client]'`."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import socketio

from tidings.client.errors import AuthenticationError, TidingsError, Unavailable, error_from_body
from tidings.client.models import InboxChange, Notification, Preference, StatusChange
from tidings.client.recent import RecentIds

TokenSource = str | Callable[[], str]
StatusHandler = Callable[[StatusChange], Awaitable[None] | None]
ChangeHandler = Callable[[InboxChange], Awaitable[None] | None]
_CLOSED = object()


class Inbox:
    """One user's live notifications. `token` may be a callable, asked again on every
    (re)connect so an expiring token can be refreshed. `channels` are subscribed on
    every connect. `on_status` receives `notificationStatus` events (other tabs and
    devices marking read, acks); `on_change` receives `inboxChanged` events (a
    notification deleted elsewhere: a caller that keeps a list drops it)."""

    def __init__(self, url: str, token: TokenSource, *, since: datetime | None = None,
                 channels: list[str] | None = None, on_status: StatusHandler | None = None,
                 on_change: ChangeHandler | None = None, memory: int = 10_000,
                 overlap: float = 2.0, initial_backoff: float = 0.2,
                 max_backoff: float = 15.0, call_timeout: float = 10.0,
                 transports: list[str] | None = None) -> None:
        if importlib.util.find_spec("aiohttp") is None:  # pragma: no cover - install issue
            raise ImportError("the Tidings inbox needs `pip install 'tidings[client]'`")
        self._url = url.rstrip("/")
        self._token = token
        self._watermark = since
        self._replay_first = since is not None
        self._channels = list(channels or [])
        self._on_status = on_status
        self._on_change = on_change
        self._seen = RecentIds(memory)
        self._overlap = timedelta(seconds=overlap)
        self._backoff = (initial_backoff, max_backoff)
        self._call_timeout = call_timeout
        self._transports = transports or ["websocket"]
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._connected = asyncio.Event()
        self._sio: socketio.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self.connections = 0  # successful connects so far (1 + reconnects)

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tidings-inbox")
            self._task.add_done_callback(self._ended)

    async def aclose(self) -> None:
        """Disconnect and stop reconnecting; a pending iteration ends."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop()
        self._queue.put_nowait(_CLOSED)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Notification:
        item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # every later call ends too
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, Notification)
        return item

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        """Until connected, with the replay asked for (bound it with `asyncio.timeout`)."""
        await self._connected.wait()

    async def ack(self, notification_id: str) -> dict[str, Any]:
        """Confirm the in-app delivery: the notification becomes `delivered`."""
        return await self._call("ack", {"id": notification_id})

    async def mark_read(self, notification_id: str) -> dict[str, Any]:
        return await self._call("markAsRead", {"id": notification_id})

    async def update_preferences(self, *items: Preference) -> list[Preference]:
        """Store preferences (all or nothing); answers the stored rows."""
        answer = await self._call("updatePreferences",
                                  {"items": [item.to_json() for item in items]})
        return [Preference.from_json(item) for item in answer.get("items", [])]

    async def _call(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Send one event with an acknowledgement, waiting for a connection when there is
        none, within `call_timeout` in all; an `{"ok": false}` answer raises its error."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._call_timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Unavailable(f"no connection to Tidings to send {event}",
                                  code="disconnected")
            try:
                await asyncio.wait_for(self._connected.wait(), remaining)
                sio = self._sio
                if sio is None:
                    raise socketio.exceptions.DisconnectedError()
                answer = await sio.call(event, data, timeout=max(remaining, 0.1))
            except (TimeoutError, socketio.exceptions.SocketIOError):
                await asyncio.sleep(0.05)  # the connection went away: wait for the next one
                continue
            if isinstance(answer, dict) and answer.get("ok"):
                return answer
            raise error_from_body(None, answer.get("error") if isinstance(answer, dict)
                                  else None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        try:
            while True:
                gone = asyncio.Event()
                try:
                    await self._connect(gone)
                except AuthenticationError as exc:
                    self._queue.put_nowait(exc)
                    return
                except (TimeoutError, OSError, socketio.exceptions.SocketIOError,
                        TidingsError):
                    await self._drop()
                    failures += 1
                    await asyncio.sleep(self._delay(failures))
                    continue
                since = loop.time()
                await gone.wait()
                self._connected.clear()
                await self._drop()
                # A connection that held a while starts the backoff over; one dropped at
                # once (a server refusing us after the handshake) keeps it growing.
                held = loop.time() - since >= self._backoff[1]
                failures = 1 if held else failures + 1
                await asyncio.sleep(self._delay(failures))
        finally:
            self._connected.clear()

    def _ended(self, task: asyncio.Task[None]) -> None:
        # An error nobody expected must reach the iterating caller, not end in silence.
        if not task.cancelled() and task.exception() is not None:
            self._queue.put_nowait(task.exception())

    def _delay(self, failures: int) -> float:
        initial, maximum = self._backoff
        step = min(maximum, initial * 2.0 ** (failures - 1))
        return step / 2 + random.random() * step / 2

    async def _connect(self, gone: asyncio.Event) -> None:
        sio = socketio.AsyncClient(reconnection=False)
        refused: list[str] = []
        sio.on("connect_error", lambda data=None: refused.append(_reason(data)))
        sio.on("disconnect", lambda *_args: gone.set())
        sio.on("notification", self._received)
        sio.on("notificationStatus", self._status)
        sio.on("inboxChanged", self._changed)
        self._sio = sio
        token = self._token() if callable(self._token) else self._token
        try:
            await sio.connect(self._url, auth={"token": token}, transports=self._transports,
                              wait_timeout=self._call_timeout)
        except socketio.exceptions.ConnectionError:
            if any("authentication" in reason.lower() for reason in refused):
                raise AuthenticationError("Authentication failed", code="authentication_failed"
                                          ) from None
            raise
        if self._channels:
            await self._expect_ok(await sio.call("subscribe", {"channels": self._channels},
                                                 timeout=self._call_timeout))
        await self._replay(sio)
        self.connections += 1
        self._connected.set()

    async def _replay(self, sio: socketio.AsyncClient) -> None:
        if self._watermark is None:
            # Nothing seen yet and no `since`: start live, and replay from here later.
            self._watermark = datetime.now(UTC)
            return
        if self.connections == 0 and not self._replay_first:
            return
        since = self._watermark - self._overlap
        await self._expect_ok(await sio.call("requestMissedNotifications",
                                             {"since": since.isoformat()},
                                             timeout=self._call_timeout))

    @staticmethod
    async def _expect_ok(answer: Any) -> None:
        if not (isinstance(answer, dict) and answer.get("ok")):
            raise error_from_body(None, answer.get("error") if isinstance(answer, dict)
                                  else None)

    async def _received(self, body: Any) -> None:
        try:
            notification = Notification.from_json(body)
        except (KeyError, TypeError, ValueError):
            return  # not a notification of the contract: nothing to hand out
        if not self._seen.add(notification.id):
            return
        if self._watermark is None or notification.visible_at > self._watermark:
            self._watermark = notification.visible_at
        self._queue.put_nowait(notification)

    async def _status(self, body: Any) -> None:
        if self._on_status is None or not isinstance(body, dict):
            return
        outcome = self._on_status(StatusChange.from_json(body))
        if inspect.isawaitable(outcome):
            await outcome

    async def _changed(self, body: Any) -> None:
        if self._on_change is None or not isinstance(body, dict) or "action" not in body:
            return
        try:
            change = InboxChange.from_json(body)
        except (TypeError, ValueError):
            return  # not a change of the contract: nothing to hand out
        outcome = self._on_change(change)
        if inspect.isawaitable(outcome):
            await outcome

    async def _drop(self) -> None:
        sio, self._sio = self._sio, None
        if sio is not None:
            await sio.disconnect()


def _reason(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("message", ""))
    return str(data or "")


async def inbox(url: str, token: TokenSource, **options: Any) -> AsyncIterator[Notification]:
    """`async for n in inbox(url, token)`: the notifications of an `Inbox` opened for the
    iteration and closed when it ends. Options as for `Inbox`. After a `break` the
    connection closes when the generator is finalised; to close it at once, wrap the
    call in `contextlib.aclosing(...)` or use `async with Inbox(...)`."""
    async with Inbox(url, token, **options) as box:
        async for notification in box:
            yield notification
