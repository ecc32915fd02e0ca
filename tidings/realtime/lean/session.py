"""One Engine.IO session: its state and its outgoing packets, whichever transport carries them.

A session is a plain `__slots__` object; it owns no task. Outgoing packets go:

- on long-polling, into a bounded buffer that the pending GET (if any) is woken to take;
- on WebSocket, straight into the ASGI `send` of the connection, run synchronously
  (`send_without_waiting`): the ASGI server only suspends a send while the socket's write
  buffer is full, so the usual send completes without ever yielding, and one broadcast
  never waits for one slow client. Only a backed-up connection gets a task, which finishes
  that send; packets sent meanwhile wait in the same bounded buffer.

A buffer over its bound means the client does not read: `push` answers False and the
owner closes the session (the client reconnects and asks for what it missed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from starlette.types import Message

from tidings.realtime import connection
from tidings.realtime.lean import packets

log = logging.getLogger(__name__)

Send = Callable[[Message], Awaitable[None]]

# Characters of packets a session may hold for a client that is not reading (~2 MB: a long
# replay of missed notifications fits; a client that never reads does not grow without end).
MAX_BUFFERED = 2 * 1024 * 1024


def send_without_waiting(send: Send, message: Message) -> asyncio.Task[None] | None:
    """Run one ASGI send call as far as it goes without suspending.

    Answers None when it completed (the usual case), else a task that finishes it. Raises
    what the send raised synchronously (OSError from uvicorn when the client is gone).
    """
    call = send(message)
    if not isinstance(call, Coroutine):  # an ASGI server whose send is some other awaitable
        return asyncio.ensure_future(_await(call))
    try:
        waiting = call.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_finish(call, waiting))


async def _await(call: Awaitable[None]) -> None:
    try:
        await call
    except (OSError, RuntimeError) as exc:
        log.debug("websocket send failed: %r", exc)


async def _finish(call: Coroutine[Any, Any, Any], waiting: Any) -> None:
    """Drive a coroutine that suspended on `waiting` (as an asyncio Task would have)."""
    try:
        while True:
            if waiting is None:  # a bare `yield`: give the loop one turn
                await asyncio.sleep(0)
            else:
                await waiting
            waiting = call.send(None)
    except StopIteration:
        return
    except (OSError, RuntimeError) as exc:  # the client went away meanwhile
        log.debug("websocket send failed: %r", exc)
    finally:
        call.close()


class Session:
    __slots__ = (
        "awaiting_pong",
        "buffer",
        "buffered",
        "closed",
        "connect_due",
        "connected",
        "drainer",
        "ping_sent_at",
        "polling",
        "sid",
        "socket_sid",
        "upgrading",
        "waiter",
        "ws_send",
    )

    def __init__(self, sid: str) -> None:
        self.sid = sid
        # Socket.IO: the socket's own sid (distinct from the Engine.IO sid, which is a
        # credential for the polling requests) once a CONNECT is being handled.
        self.socket_sid: str | None = None
        self.connected = False
        # Packets go over this WebSocket once it is set (opened directly, or upgraded).
        self.ws_send: Send | None = None
        self.buffer: list[str] = []
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None  # the pending long-poll GET
        self.polling = False  # a GET is being answered
        self.upgrading = False  # probe answered, waiting for the client's UPGRADE
        self.drainer: asyncio.Task[None] | None = None  # finishing a blocked WebSocket send
        self.closed = False
        self.awaiting_pong = False
        self.ping_sent_at = 0.0
        self.connect_due = 0.0  # by when namespace `/` must be joined (see heartbeat.py)

    def push(self, text: str) -> bool:
        """Queue or send one packet; False if the session is closed or the client lags."""
        if self.closed:
            return False
        if self.ws_send is not None and self.drainer is None:
            return self._write(text)
        if self.buffered + len(text) > MAX_BUFFERED:
            return False
        self.buffer.append(text)
        self.buffered += len(text)
        self.wake()
        return True

    def take(self) -> list[str]:
        """Everything buffered, oldest first; the buffer is left empty."""
        taken, self.buffer, self.buffered = self.buffer, [], 0
        return taken

    def use_websocket(self, send: Send) -> None:
        """From now on packets go over this WebSocket; what polling had buffered goes first."""
        self.ws_send = send
        self.upgrading = False
        self._flush()

    def end(self, notify: bool) -> None:
        """Mark closed; a polling client is told (CLOSE packet) by its pending or next GET,
        a WebSocket is closed (with a CLOSE packet first when `notify`).

        A WebSocket whose client is not reading (a send blocked, or bytes still unsent
        after the close frame, in the server's buffer or the kernel's) is reset at once:
        its close frame would wait behind data the client will never read, and the TCP
        connection, with megabytes in the kernel, would stay open with it.
        """
        if self.closed:
            return
        self.closed = True
        if self.ws_send is None:
            if notify:
                self.buffer.append(packets.CLOSE_PACKET)
            self.wake()
            return
        backed_up = self.drainer is not None
        if self.drainer is not None:
            self.drainer.cancel()  # the data of a client we drop is not worth waiting for
            self.drainer = None
        self.buffer.clear()
        try:
            if notify and not backed_up:
                send_without_waiting(self.ws_send, {"type": "websocket.send",
                                                    "text": packets.CLOSE_PACKET})
            self.drainer = send_without_waiting(self.ws_send,
                                                {"type": "websocket.close", "code": 1000})
        except (OSError, RuntimeError) as exc:
            log.debug("closing websocket of %s: %r", self.sid, exc)
        if backed_up or self.drainer is not None or connection.not_reading(self.ws_send):
            log.debug("session %s: client not reading, dropping its connection", self.sid)
            connection.abort(self.ws_send)

    def wake(self) -> None:
        """Answer the pending long-poll GET now (with what the session holds then)."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _write(self, text: str) -> bool:
        assert self.ws_send is not None
        try:
            task = send_without_waiting(self.ws_send, {"type": "websocket.send", "text": text})
        except (OSError, RuntimeError) as exc:
            log.debug("websocket send to %s failed: %r", self.sid, exc)
            return False
        if task is not None:
            self.drainer = task
            task.add_done_callback(self._drained)
        return True

    def _drained(self, task: asyncio.Task[None]) -> None:
        if task is not self.drainer:
            return  # cancelled by `end`, which replaced it
        self.drainer = None
        self._flush()

    def _flush(self) -> None:
        """Send the buffer over the WebSocket until it is empty or a send blocks again."""
        pending = self.take()
        for index, text in enumerate(pending):
            if self.drainer is not None:
                rest = pending[index:]
                self.buffer = rest + self.buffer
                self.buffered = sum(len(item) for item in self.buffer)
                return
            if not self._write(text):
                return
