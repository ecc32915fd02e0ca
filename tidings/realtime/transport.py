"""What the gateway needs from a Socket.IO server implementation.

Two implementations can sit behind it: python-socketio (`sio_transport.py`, the reference
implementation of the protocol) and a leaner one of the project's own. The gateway, and
everything above it, never sees which.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from starlette.types import ASGIApp


class ConnectionRefused(Exception):
    """Raised by the connect handler: the client gets `connect_error` with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JsonRecord(Protocol):
    """An event payload that may have its JSON written already (a notification that is
    also a create's HTTP answer): `to_json()` its value, `written_json()` that value as
    orjson writes it, or None."""

    def to_json(self) -> dict[str, Any]: ...

    def written_json(self) -> bytes | None: ...


# (sid, auth payload of the CONNECT packet); raise ConnectionRefused to refuse.
ConnectHandler = Callable[[str, Any], Awaitable[None]]
# (sid); called once the CONNECT answer is on its way, so events sent here follow it.
ConnectedHandler = Callable[[str], Awaitable[None]]
DisconnectHandler = Callable[[str], Awaitable[None]]
# (sid, event name, arguments); the return value is the acknowledgement, when asked for.
EventHandler = Callable[[str, str, list[Any]], Awaitable[Any]]


class SocketTransport(Protocol):
    def bind(
        self,
        on_connect: ConnectHandler,
        on_connected: ConnectedHandler,
        on_disconnect: DisconnectHandler,
        on_event: EventHandler,
    ) -> None: ...

    def asgi(self, other: ASGIApp) -> ASGIApp:
        """The ASGI app serving `/socket.io/` and handing every other request to `other`."""

    async def join(self, sid: str, room: str) -> None: ...

    def members(self, room: str) -> list[str]: ...

    async def send(self, sids: Iterable[str], event: str, payload: Mapping[str, Any]) -> int:
        """Send one event to these sockets (framed once); returns how many were sent."""

    async def send_record(self, sids: Iterable[str], event: str, record: JsonRecord) -> int:
        """`send(sids, event, record.to_json())`, the same characters on the wire; a
        transport whose framing is orjson's compact form splices the record's written
        JSON, where there is one, instead of writing it again."""

    async def disconnect(self, sid: str) -> None:
        """Close this socket (the client sees a server-side disconnect); the disconnect
        handler runs as for any close. Unknown or closed sids are ignored."""
