"""uvicorn's sans-I/O WebSocket protocol, lighter per connection.

Measured with tracemalloc (scripts/session_memory.py), uvicorn's protocol object was most
of what an idle socket costs: an `asyncio.Queue` for incoming messages (three deques and an
Event: ~3.3 KB, as an empty deque allocates a 64-slot block) and an `asyncio.Event` for
write readiness (~0.9 KB), plus the parsed handshake request and response it keeps for
the connection's lifetime (~2.5 KB of header structures). The protocol needs far less:
one consumer (the ASGI app's `receive`) and one writer wait on these, one at a time.
This subclass swaps in equivalents without deques, and lets the handshake go once the
connection is accepted. The wire behaviour is uvicorn's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class MessageQueue:
    """The part of `asyncio.Queue` the protocol uses, for its single reader."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class Flag:
    """The part of `asyncio.Event` the protocol uses; waiters are kept only while some
    wait (a write blocked on a full buffer), not for every connection."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = MessageQueue()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # The handshake is answered: its parsed request and response are not read
            # again, and would otherwise live as long as the connection.
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
