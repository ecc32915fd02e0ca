"""Engine.IO v4 over WebSocket: a session opened directly on it, or a polling session
upgraded to it (probe, then UPGRADE).

The coroutine the ASGI server runs for the connection is its only task: it reads and
handles the client's packets in order. Writes do not need it (see `session.py`).
"""

from __future__ import annotations

import logging

from starlette.types import Message, Receive, Scope, Send

from tidings.realtime import connection
from tidings.realtime.lean import packets
from tidings.realtime.lean.cors import Headers
from tidings.realtime.lean.engine import Engine
from tidings.realtime.lean.packets import ProtocolError
from tidings.realtime.lean.session import Session, send_without_waiting

log = logging.getLogger(__name__)

PROBE_PING = packets.PING + packets.PROBE
PROBE_PONG = packets.PONG + packets.PROBE


async def reject(scope: Scope, send: Send, status: int, body: bytes) -> None:
    """Refuse a WebSocket handshake with an HTTP status where the server allows it (uvicorn
    does), else with the plain ASGI close (a 403)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


async def open_direct(engine: Engine, receive: Receive, send: Send, headers: Headers) -> None:
    if not await _accept(engine, receive, send, headers):
        return
    session = engine.open(upgrades=[])
    session.use_websocket(send)
    # The read loop runs in this frame, not a coroutine of its own: every frame on the
    # await chain of an idle socket is memory held for the connection's lifetime.
    try:
        while not session.closed:
            await engine.receive(session, _text_of(engine, await receive()))
    except ProtocolError as exc:
        log.debug("session %s: %s", session.sid, exc)
    finally:
        # Closes the WebSocket too, unless the client already did.
        await engine.close(session, notify=False)


async def upgrade(engine: Engine, session: Session, receive: Receive, send: Send,
                  headers: Headers) -> None:
    """Probe and upgrade a polling session. Until the client's UPGRADE the session stays on
    polling (its packets wait in the buffer); a failed probe leaves it there."""
    if not await _accept(engine, receive, send, headers):
        return
    try:
        if await _text(engine, receive) != PROBE_PING or session.closed:
            raise ProtocolError("expected the probe")
        send_without_waiting(send, {"type": "websocket.send", "text": PROBE_PONG})
        session.upgrading = True
        session.wake()  # a pending GET answers NOOP and the client stops polling
        if await _text(engine, receive) != packets.UPGRADE or session.closed:
            raise ProtocolError("expected UPGRADE")
    except ProtocolError as exc:
        log.debug("session %s: upgrade failed (%s)", session.sid, exc)
        session.upgrading = False
        await _close(send)
        return
    session.use_websocket(send)
    try:  # the read loop, in this frame (see `open_direct`)
        while not session.closed:
            await engine.receive(session, _text_of(engine, await receive()))
    except ProtocolError as exc:
        log.debug("session %s: %s", session.sid, exc)
    finally:
        await engine.close(session, notify=False)


async def _accept(engine: Engine, receive: Receive, send: Send, headers: Headers) -> bool:
    message = await receive()
    if message["type"] != "websocket.connect":
        return False
    # Bound messages in the server's frame parser, so an oversized one is refused from its
    # header, never buffered; `_text` checks again where the server offers no such hook.
    connection.limit_incoming(send, engine.options.max_payload)
    await send({"type": "websocket.accept", "headers": headers})
    return True


async def _text(engine: Engine, receive: Receive) -> str:
    """The next text message; ProtocolError for a binary, oversized or closed one."""
    return _text_of(engine, await receive())


def _text_of(engine: Engine, message: Message) -> str:
    if message["type"] != "websocket.receive":
        raise ProtocolError("the client closed the connection")
    text = message.get("text")
    if text is None:
        raise ProtocolError("binary messages are not accepted")
    limit = engine.options.max_payload
    if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
        raise ProtocolError(f"message over {limit} bytes")
    return str(text)


async def _close(send: Send) -> None:
    try:
        send_without_waiting(send, {"type": "websocket.close", "code": 1000})
    except (OSError, RuntimeError) as exc:
        log.debug("websocket close: %r", exc)
