"""What ASGI cannot say about a WebSocket connection, asked of the server behind it.

ASGI has no way to bound the size of an incoming WebSocket message before it is buffered,
nor to drop a connection whose peer has stopped reading (a `websocket.close` waits behind
the unsent data like any other send). uvicorn's WebSocket protocols expose both: the ASGI
`send` they hand the app is a method of the protocol object, which holds the asyncio
transport and, for the websockets-based implementations, the frame parser's size limit.

Every function here degrades to doing nothing under a server without these objects: the
transport still refuses an oversized message when it arrives, only later and at a higher
memory cost, and a connection is still closed, only not until its buffer drains.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import Send

log = logging.getLogger(__name__)


def _protocol(send: Send) -> Any:
    return getattr(send, "__self__", None)


def _transport(send: Send) -> Any:
    # Duck-typed: uvloop's transports do not derive from asyncio's classes.
    transport = getattr(_protocol(send), "transport", None)
    return transport if callable(getattr(transport, "abort", None)) else None


def limit_incoming(send: Send, max_bytes: int) -> bool:
    """Make the server's frame parser refuse (close code 1009) any message over
    `max_bytes`, as soon as a frame header announces it, before its payload is read.

    Applies to the frames whose header arrives after this call: call it before accepting
    the connection, when a well-behaved client has not sent any yet.
    """
    protocol = _protocol(send)
    parser: Any = getattr(protocol, "conn", None)
    if parser is not None and hasattr(parser, "max_message_size"):
        # websockets' sans-I/O protocol (uvicorn `ws="websockets-sansio"`), >= 14.
        parser.max_message_size = max_bytes
        return True
    if isinstance(getattr(protocol, "max_size", None), int):
        protocol.max_size = max_bytes  # websockets' legacy protocol (`ws="websockets"`)
        return True
    return False


def unsent_bytes(send: Send) -> int:
    """Bytes the server has accepted for the connection but not yet handed to the kernel."""
    transport = _transport(send)
    if transport is None:
        return 0
    return int(transport.get_write_buffer_size())


def abort(send: Send) -> bool:
    """Drop the TCP connection now, discarding whatever is still unsent."""
    transport = _transport(send)
    if transport is None:
        return False
    transport.abort()
    return True
