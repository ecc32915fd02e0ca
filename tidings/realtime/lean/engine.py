"""Engine.IO v4 sessions: open, receive a packet, close. Transports (`polling.py`,
`websocket.py`) move text; this module decides what the text means at the Engine.IO level
and hands Socket.IO messages to the layer above (`on_message`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tidings.realtime.lean import packets
from tidings.realtime.lean.heartbeat import Heartbeat
from tidings.realtime.lean.packets import ProtocolError
from tidings.realtime.lean.session import Session

log = logging.getLogger(__name__)

MessageHandler = Callable[[Session, str], Awaitable[None]]
CloseHandler = Callable[[Session], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class EngineOptions:
    ping_interval: float  # seconds
    ping_timeout: float  # seconds
    max_payload: int  # bytes, of one POST body or one WebSocket message
    connect_timeout: float  # seconds a session may go without namespace `/` connected
    max_packets: int = 256  # packets in one long-polling POST


def new_sid() -> str:
    # 120 random bits: an Engine.IO sid is the only credential of a polling request.
    return secrets.token_urlsafe(15)


class Engine:
    __slots__ = ("_heartbeat", "_on_close", "_on_message", "options", "sessions")

    def __init__(self, options: EngineOptions, on_message: MessageHandler,
                 on_close: CloseHandler) -> None:
        self.options = options
        self.sessions: dict[str, Session] = {}
        self._on_message = on_message
        self._on_close = on_close
        self._heartbeat = Heartbeat(options.ping_interval, options.ping_timeout,
                                    options.connect_timeout, self._ping, self._expired)

    def open(self, upgrades: list[str]) -> Session:
        """A new session with its OPEN packet queued (sent first, whatever the transport)."""
        session = Session(new_sid())
        self.sessions[session.sid] = session
        session.push(packets.open_packet(
            session.sid,
            int(self.options.ping_interval * 1000),
            int(self.options.ping_timeout * 1000),
            self.options.max_payload,
            upgrades,
        ))
        self._heartbeat.add(session)
        return session

    async def receive(self, session: Session, text: str) -> None:
        """One Engine.IO packet from the client; raises ProtocolError for anything the
        protocol does not allow at this point (the caller closes the session)."""
        kind = text[:1]
        if kind == packets.MESSAGE:
            await self._on_message(session, text[1:])
        elif kind == packets.PONG:
            self._heartbeat.pong(session)
        elif kind == packets.CLOSE:
            await self.close(session, notify=False)
        elif kind == packets.NOOP:
            pass
        else:
            # OPEN, PING (only as the upgrade probe, handled by websocket.py), UPGRADE out
            # of an upgrade, binary ("b..."), empty or unknown.
            raise ProtocolError(f"unexpected Engine.IO packet {text[:10]!r}")

    async def close(self, session: Session, *, notify: bool = True) -> None:
        """Close once: the client is told when `notify` (it did not close itself), then the
        layer above forgets the session."""
        if session.closed:
            return
        session.end(notify)
        self.sessions.pop(session.sid, None)
        try:
            await self._on_close(session)
        finally:
            self._heartbeat.remove(session)

    def joined(self, session: Session) -> None:
        """The Socket.IO layer connected namespace `/`: no connect deadline any more."""
        self._heartbeat.joined(session)

    def left(self, session: Session) -> None:
        """The Socket.IO layer left namespace `/`: the session must join it again within
        the connect deadline, as a new one must, or it is closed."""
        if not session.closed:
            self._heartbeat.expect_connect(session)

    def stop(self) -> None:
        self._heartbeat.stop()

    def _ping(self, session: Session) -> None:
        if not session.push(packets.PING_PACKET):
            # A client that lets 2 MB pile up will not answer this ping either: the
            # heartbeat closes it at its pong deadline.
            log.debug("session %s lags, ping not queued", session.sid)

    async def _expired(self, session: Session) -> None:
        # No pong, or no namespace joined, in time.
        await self.close(session)
