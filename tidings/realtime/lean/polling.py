"""Engine.IO v4 over HTTP long-polling: the handshake GET, the long-poll GET and the POST.

A long-poll GET is answered as soon as the session has packets (several joined by the
record separator), so it waits at most one ping interval. Exactly one GET may wait per
session, as in the reference servers; a second one means a confused or hostile client,
and the session is closed. Packets from the client come in a POST, handled in order
before it is answered.
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.types import Receive, Scope, Send

from tidings.realtime.lean import packets
from tidings.realtime.lean.cors import Headers
from tidings.realtime.lean.engine import Engine
from tidings.realtime.lean.packets import ProtocolError
from tidings.realtime.lean.session import Session
from tidings.support.http_body import BodyTooLarge, ClientGone, read_body

log = logging.getLogger(__name__)

TEXT = b"text/plain; charset=UTF-8"
JSON = b"application/json"


async def respond(send: Send, status: int, body: bytes, headers: Headers,
                  content_type: bytes = TEXT) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store"), *headers]})
    await send({"type": "http.response.body", "body": body})


def error_body(code: int, message: str) -> bytes:
    """An error as the JS reference server words it (`{"code", "message"}`)."""
    return json.dumps({"code": code, "message": message}).encode()


async def error(send: Send, status: int, code: int, message: str, headers: Headers) -> None:
    await respond(send, status, error_body(code, message), headers, JSON)


async def handshake(engine: Engine, send: Send, headers: Headers) -> None:
    session = engine.open(upgrades=["websocket"])
    await respond(send, 200, packets.join_payload(session.take()).encode(), headers)


async def poll(engine: Engine, session: Session, send: Send, headers: Headers) -> None:
    if session.ws_send is not None:
        # Upgraded: everything flows over the WebSocket now.
        await error(send, 400, 3, "Bad request", headers)
        return
    if session.polling:
        log.debug("session %s: overlapping GET, closing", session.sid)
        await engine.close(session)
        await error(send, 400, 3, "Bad request", headers)
        return
    session.polling = True
    try:
        if not session.buffer and not session.closed and not session.upgrading:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            session.waiter = waiter
            await waiter
    finally:
        session.polling = False
        session.waiter = None
    if session.upgrading or session.ws_send is not None:
        # The client is moving to the WebSocket: end this poll, keep the packets for it.
        body = [packets.NOOP_PACKET]
    else:
        # A session the server closed holds its CLOSE packet; one the client closed (its
        # POST carried CLOSE) ends this GET with NOOP, as the reference servers do.
        body = session.take() or [packets.NOOP_PACKET]
    await respond(send, 200, packets.join_payload(body).encode(), headers)


async def post(engine: Engine, session: Session, scope: Scope, receive: Receive, send: Send,
               headers: Headers) -> None:
    if session.ws_send is not None:
        await error(send, 400, 3, "Bad request", headers)
        return
    limit = engine.options.max_payload
    try:
        body = await read_body(scope, receive, limit)
    except BodyTooLarge:
        log.debug("session %s: POST body over %d bytes, closing", session.sid, limit)
        await engine.close(session)
        await error(send, 413, 3, "Payload too large", headers)
        return
    except ClientGone:
        return
    try:
        batch = packets.split_payload(body.decode("utf-8"))
        if len(batch) > engine.options.max_packets:
            # Clients batch what they queued, a handful of packets; thousands of tiny ones
            # in one body is a way around the per-event cost, not a client's behaviour.
            raise ProtocolError(f"{len(batch)} packets in one POST")
        for text in batch:
            if session.closed:
                break
            await engine.receive(session, text)
    except (ProtocolError, UnicodeDecodeError) as exc:
        log.debug("session %s: %s, closing", session.sid, exc)
        await engine.close(session)
        await error(send, 400, 3, "Bad request", headers)
        return
    await respond(send, 200, b"ok", headers)
