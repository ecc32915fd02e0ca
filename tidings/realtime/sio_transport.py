"""The Socket.IO transport on python-socketio."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

import socketio
from engineio import packet as eio_packet
from starlette.types import ASGIApp

from tidings.realtime.transport import (
    ConnectedHandler,
    ConnectHandler,
    ConnectionRefused,
    DisconnectHandler,
    EventHandler,
)
from tidings.settings import Settings

NAMESPACE = "/"


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
            await on_disconnect(sid)

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
        app: ASGIApp = socketio.ASGIApp(self.server, other_asgi_app=other,
                                        socketio_path="socket.io")
        return app

    async def join(self, sid: str, room: str) -> None:
        await self.server.enter_room(sid, room)

    async def disconnect(self, sid: str) -> None:
        await self.server.disconnect(sid)

    def members(self, room: str) -> list[str]:
        return [sid for sid, _ in self.server.manager.get_participants(NAMESPACE, room)]

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
