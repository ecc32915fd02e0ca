"""The lean Socket.IO transport: the ASGI entry for `/socket.io/` and the Socket.IO v5 layer
(namespace `/` only) on top of the Engine.IO sessions.

Client packets of one connection are handled in order, by the task that reads them (the
WebSocket's, or the POST's): no task per message, and a client sees its acks in the order
it asked. Sending never waits (see `session.py`), so a handler that emits cannot stall.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.config.settings import Settings
from tidings.realtime.lean import packets, polling, websocket
from tidings.realtime.lean.cors import CorsPolicy, header
from tidings.realtime.lean.engine import Engine, EngineOptions, new_sid
from tidings.realtime.lean.packets import ProtocolError, SocketPacket
from tidings.realtime.lean.rooms import Rooms
from tidings.realtime.lean.session import Session
from tidings.realtime.transport import (
    ConnectedHandler,
    ConnectHandler,
    ConnectionRefused,
    DisconnectHandler,
    EventHandler,
    JsonRecord,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

PATH = "/socket.io/"
# The reference servers' defaults, which every client expects unless told otherwise.
PING_INTERVAL = 25.0
PING_TIMEOUT = 20.0


async def _unbound(*_args: Any) -> Any:
    raise RuntimeError("LeanTransport.bind() was not called")


class LeanTransport:
    def __init__(self, settings: Settings, *, ping_interval: float | None = None,
                 ping_timeout: float | None = None) -> None:
        self.engine = Engine(
            EngineOptions(ping_interval=ping_interval or PING_INTERVAL,
                          ping_timeout=ping_timeout or PING_TIMEOUT,
                          max_payload=settings.max_event_bytes,
                          connect_timeout=settings.connect_timeout_s,
                          max_packets=settings.max_poll_packets),
            on_message=self._on_message,
            on_close=self._on_close,
        )
        self._cors = CorsPolicy(settings.cors_origins, settings.trusted_proxies)
        self._rooms = Rooms()
        self._sockets: dict[str, Session] = {}  # Socket.IO sid -> its session
        self._on_connect: ConnectHandler = _unbound
        self._on_connected: ConnectedHandler = _unbound
        self._on_disconnect: DisconnectHandler = _unbound
        self._on_event: EventHandler = _unbound

    # -- SocketTransport ------------------------------------------------------------------

    def bind(
        self,
        on_connect: ConnectHandler,
        on_connected: ConnectedHandler,
        on_disconnect: DisconnectHandler,
        on_event: EventHandler,
    ) -> None:
        self._on_connect = on_connect
        self._on_connected = on_connected
        self._on_disconnect = on_disconnect
        self._on_event = on_event

    def asgi(self, other: ASGIApp) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in ("http", "websocket") and scope["path"].startswith(PATH):
                await self._handle(scope, receive, send)
            elif scope["type"] == "lifespan":
                await other(scope, self._watch_shutdown(receive), send)
            else:
                await other(scope, receive, send)

        return app

    def _watch_shutdown(self, receive: Receive) -> Receive:
        """Lifespan stays the other app's; the sessions still open at shutdown are closed
        first (clients are told, the gateway hears of each), and the heartbeat stops."""

        async def watched() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.close_all()
            return message

        return watched

    async def close_all(self) -> None:
        for session in list(self.engine.sessions.values()):
            await self.engine.close(session)
        self.engine.stop()

    async def join(self, sid: str, room: str) -> None:
        if sid in self._sockets:  # not one that disconnected meanwhile
            self._rooms.join(sid, room)

    def members(self, room: str) -> list[str]:
        return self._rooms.members(room)

    async def disconnect(self, sid: str) -> None:
        session = self._sockets.get(sid)
        if session is not None:
            # Socket.IO's own DISCONNECT first: clients take it as "the server ended this
            # socket" (not a network failure) and do not retry with the same credentials.
            session.push(packets.MESSAGE + packets.DISCONNECT)
            await self.engine.close(session)

    async def send(self, sids: Iterable[str], event: str, payload: Mapping[str, Any]) -> int:
        sent, lagging = self._push(sids, packets.event, event, payload)
        if lagging:
            await self._close_lagging(lagging)
        return sent

    async def send_record(self, sids: Iterable[str], event: str, record: JsonRecord) -> int:
        sent, lagging = self._push(sids, _record_event, event, record)
        if lagging:
            await self._close_lagging(lagging)
        return sent

    def _push(self, sids: Iterable[str], frame: Callable[[str, T], str], event: str,
              payload: T) -> tuple[int, list[Session]]:
        """The event, framed once (and only if a socket is still there), to each socket:
        how many took it, and the sessions that lag (to be closed)."""
        text: str | None = None
        sent = 0
        lagging: list[Session] = []
        for sid in sids:
            session = self._sockets.get(sid)
            if session is None:
                continue  # disconnected meanwhile
            text = text or frame(event, payload)
            if session.push(text):
                sent += 1
            else:
                lagging.append(session)
        return sent, lagging

    async def _close_lagging(self, lagging: list[Session]) -> None:
        for session in lagging:
            log.debug("session %s does not read its packets, closing", session.sid)
            await self.engine.close(session)

    # -- HTTP and WebSocket requests ------------------------------------------------------

    def _handle(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The coroutine that answers this request. Routing runs here, synchronously, and
        the ASGI app awaits the coroutine returned: no frame of this method (nor the parsed
        query of `_route`) stays on the await chain of a WebSocket for its lifetime."""
        is_ws = scope["type"] == "websocket"
        refusal, session = self._route(scope, is_ws)
        if refusal is not None:
            code, message = refusal
            body = polling.error_body(code, message)
            if is_ws:
                return websocket.reject(scope, send, 400, body)
            return polling.respond(send, 400, body, [], polling.JSON)
        headers = self._cors.headers(scope)
        if is_ws:
            if session is None:
                return websocket.open_direct(self.engine, receive, send, headers)
            return websocket.upgrade(self.engine, session, receive, send, headers)
        method = scope["method"]
        if method == "OPTIONS":
            return polling.respond(send, 204, b"", headers)
        if method == "GET" and session is None:
            return polling.handshake(self.engine, send, headers)
        if method == "GET" and session is not None:
            return polling.poll(self.engine, session, send, headers)
        if method == "POST" and session is not None:
            return polling.post(self.engine, session, scope, receive, send, headers)
        return polling.error(send, 400, 2, "Bad handshake method", headers)

    def _route(self, scope: Scope, is_ws: bool) -> tuple[tuple[int, str] | None, Session | None]:
        """(refusal as (code, message), or None; the session the request names, if any)."""
        if not self._cors.allows(scope):
            log.debug("origin %s refused", header(scope, b"origin"))
            return (4, "Origin not allowed"), None
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("EIO") != ["4"]:
            return (5, "Unsupported protocol version"), None
        if query.get("transport") != (["websocket"] if is_ws else ["polling"]):
            return (0, "Transport unknown"), None
        sid = query.get("sid", [None])[0]
        if sid is None:
            return None, None
        session = self.engine.sessions.get(sid)
        if session is None:
            return (1, "Session ID unknown"), None
        if is_ws and (session.ws_send is not None or session.upgrading):
            return (3, "Bad request"), None  # upgraded already, or being upgraded
        return None, session

    # -- Socket.IO ------------------------------------------------------------------------

    async def _on_message(self, session: Session, text: str) -> None:
        packet = packets.parse_socket_packet(text)
        if packet.kind == packets.CONNECT:
            await self._connect(session, packet)
        elif packet.namespace != packets.DEFAULT_NAMESPACE or not session.connected:
            raise ProtocolError(f"packet for a namespace not connected: {text[:20]!r}")
        elif packet.kind == packets.EVENT:
            await self._event(session, packet)
        elif packet.kind == packets.DISCONNECT:
            # The socket leaves `/`; the Engine.IO session stays (as in the reference
            # servers) and may CONNECT again, within the connect deadline, now re-armed.
            await self._disconnect(session)
            self.engine.left(session)
        elif packet.kind == packets.ACK:
            pass  # the server never asks clients for acks
        else:
            raise ProtocolError(f"unexpected Socket.IO packet {text[:20]!r}")

    async def _connect(self, session: Session, packet: SocketPacket) -> None:
        if packet.namespace != packets.DEFAULT_NAMESPACE:
            session.push(packets.connect_error("Invalid namespace", packet.namespace))
            return
        if session.socket_sid is not None:
            raise ProtocolError("second CONNECT on one session")
        sid = session.socket_sid = new_sid()
        self._sockets[sid] = session
        try:
            await self._on_connect(sid, packet.data)
        except ConnectionRefused as exc:
            self._forget(session)
            session.push(packets.connect_error(exc.message))
            return
        except Exception:
            log.exception("connect handler failed")
            self._forget(session)
            session.push(packets.connect_error("Internal server error"))
            return
        if session.closed:
            # The client left while the handler ran; `_on_close` skipped the socket, as it
            # was not connected yet, so its disconnect is reported here.
            self._forget(session)
            await self._on_disconnect(sid)
            return
        session.connected = True
        self.engine.joined(session)
        session.push(packets.connect_ok(sid))
        await self._on_connected(sid)

    async def _event(self, session: Session, packet: SocketPacket) -> None:
        assert session.socket_sid is not None
        name, args = packet.data[0], packet.data[1:]
        try:
            result = await self._on_event(session.socket_sid, name, args)
        except Exception:
            log.exception("event handler for %r failed", name)
            return
        if packet.ack_id is not None:
            session.push(packets.ack(packet.ack_id, result))

    async def _disconnect(self, session: Session) -> None:
        """The socket left namespace `/` (the gateway hears of it once)."""
        sid = session.socket_sid
        session.connected = False
        self._forget(session)
        if sid is not None:
            await self._on_disconnect(sid)

    async def _on_close(self, session: Session) -> None:
        if session.connected:
            await self._disconnect(session)

    def _forget(self, session: Session) -> None:
        sid = session.socket_sid
        if sid is not None:
            self._sockets.pop(sid, None)
            self._rooms.leave_all(sid)
        session.socket_sid = None


def _record_event(event: str, record: JsonRecord) -> str:
    """`packets.event(event, record.to_json())`, with the JSON the record wrote already
    where it did."""
    written = record.written_json()
    if written is None:
        return packets.event(event, record.to_json())
    return packets.event_with_json(event, written)
