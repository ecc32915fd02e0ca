"""The Socket.IO transport on python-socketio.

Ending a session is python-socketio's business, with one addition: the WebSocket of a
session that ended and still has data waiting for its client `RESET_AFTER_S` later is
reset, as the lean transport resets one at once (`connection.py`). python-socketio would
otherwise keep it open, its writer blocked behind megabytes in the kernel, until the client
reads or TCP gives up. (The wait is python-socketio's writer task: packets sent just before
the end, such as the reason for it, reach a client that reads.) For that, the ASGI `send`
of each WebSocket is kept by Engine.IO sid while the connection lasts.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

import socketio
from engineio import packet as eio_packet
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.config.settings import Settings
from tidings.realtime import connection
from tidings.realtime.transport import (
    ConnectedHandler,
    ConnectHandler,
    ConnectionRefused,
    DisconnectHandler,
    EventHandler,
    JsonRecord,
)

NAMESPACE = "/"
# How long a client whose session ended has to take what was sent before its WebSocket is
# reset for not reading.
RESET_AFTER_S = 1.0


def event_packet(event: str, payload: Mapping[str, Any]) -> eio_packet.Packet:
    """A Socket.IO EVENT on namespace `/`, framed once and sent as is to every recipient.

    python-socketio's `emit` also scans the payload for binary parts and spawns one task
    per recipient; server payloads here are plain JSON, so both costs are skipped.
    """
    text = json.dumps([event, payload], separators=(",", ":"), ensure_ascii=False)
    return eio_packet.Packet(eio_packet.MESSAGE, "2" + text)


class PythonSocketIOTransport:
    def __init__(self, settings: Settings) -> None:
        origins: str | list[str] | None = settings.cors_origins or None
        if settings.cors_origins == ["*"]:
            origins = "*"
        self.server = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=origins,
            max_http_buffer_size=settings.max_event_bytes,
            logger=False,
            engineio_logger=False,
            http_compression=False,
        )
        self._background: set[asyncio.Task[None]] = set()
        self._websockets: dict[str, Send] = {}  # Engine.IO sid -> its WebSocket's send

    def bind(
        self,
        on_connect: ConnectHandler,
        on_connected: ConnectedHandler,
        on_disconnect: DisconnectHandler,
        on_event: EventHandler,
    ) -> None:
        async def connect(sid: str, _environ: dict[str, Any], auth: Any = None) -> None:
            try:
                await on_connect(sid, auth)
            except ConnectionRefused as exc:
                raise socketio.exceptions.ConnectionRefusedError(exc.message) from exc
            # python-socketio sends the CONNECT answer when this handler returns, without
            # yielding first; a task that yields once runs after it.
            self._spawn(self._after_connect(on_connected, sid))

        async def disconnect(sid: str, *_reason: Any) -> None:
            eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
            try:
                await on_disconnect(sid)
            finally:
                session = self.server.eio.sockets.get(eio_sid) if eio_sid else None
                if eio_sid and session is not None and session.closing:
                    self._reset_later(eio_sid)  # the session ends, not `/` only

        async def any_event(event: str, sid: str, *args: Any) -> Any:
            return await on_event(sid, event, list(args))

        self.server.on("connect", connect)
        self.server.on("disconnect", disconnect)
        self.server.on("*", any_event)

    async def _after_connect(self, on_connected: ConnectedHandler, sid: str) -> None:
        await asyncio.sleep(0)
        await on_connected(sid)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def asgi(self, other: ASGIApp) -> ASGIApp:
        inner: ASGIApp = socketio.ASGIApp(self.server, other_asgi_app=other,
                                          socketio_path="socket.io")

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "websocket":
                await self._tracked(inner, scope, receive, send)
            else:
                await inner(scope, receive, send)

        return app

    async def _tracked(self, inner: ASGIApp, scope: Scope, receive: Receive,
                       send: Send) -> None:
        """Runs one WebSocket, its `send` kept under its Engine.IO sid: the query's for an
        upgrade, else the one its OPEN packet announces."""
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        sid: str | None = query.get("sid", [None])[0]
        if sid is not None:
            self._websockets[sid] = send

        async def watching(message: Message) -> None:
            nonlocal sid
            text = message.get("text")
            if sid is None and isinstance(text, str) and text.startswith("0{"):
                sid = str(json.loads(text[1:]).get("sid"))
                self._websockets[sid] = send
            await send(message)

        async def receiving() -> Message:
            try:
                return await receive()
            except asyncio.CancelledError:
                # python-engineio's reader gave up waiting (its ping timeout over
                # WebSocket): it waits for its writer next, which a client that does not
                # read blocks for ever, and the session never ends. Reset such a client.
                if connection.not_reading(send):
                    connection.abort(send)
                raise

        try:
            await inner(scope, receiving, watching)
        finally:
            if sid is not None and self._websockets.get(sid) is send:
                del self._websockets[sid]

    def _reset_later(self, eio_sid: str) -> None:
        asyncio.get_running_loop().call_later(RESET_AFTER_S, self._reset_if_not_reading,
                                              eio_sid)

    def _reset_if_not_reading(self, eio_sid: str) -> None:
        """The session ended: its WebSocket, if still open with data waiting for the client,
        is reset, so its buffers go now (its reader then sees the connection lost)."""
        send = self._websockets.get(eio_sid)
        if send is not None and connection.not_reading(send):
            connection.abort(send)

    async def join(self, sid: str, room: str) -> None:
        await self.server.enter_room(sid, room)

    async def disconnect(self, sid: str) -> None:
        """The socket is told (DISCONNECT) and the whole Engine.IO session closed, as the
        lean transport does; python-socketio alone would leave `/` only."""
        eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        await self.server.disconnect(sid)
        session = self.server.eio.sockets.get(eio_sid) if eio_sid else None
        if eio_sid is None or session is None or session.closed:
            return
        await session.close(wait=False)  # not waiting for a writer a client may block
        self._reset_later(eio_sid)

    def members(self, room: str) -> list[str]:
        return [sid for sid, _ in self.server.manager.get_participants(NAMESPACE, room)]

    async def send_record(self, sids: Iterable[str], event: str, record: JsonRecord) -> int:
        # The standard library's spelling of the value, as `send`: orjson's bytes, which
        # the record keeps, are not these.
        return await self.send(sids, event, record.to_json())

    async def send(self, sids: Iterable[str], event: str, payload: Mapping[str, Any]) -> int:
        packet: eio_packet.Packet | None = None
        sent = 0
        for sid in sids:
            eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
            if eio_sid is None:
                continue  # disconnected meanwhile
            packet = packet or event_packet(event, payload)
            await self.server.eio.send_packet(eio_sid, packet)
            sent += 1
        return sent
