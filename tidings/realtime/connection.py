"""What ASGI cannot say about a WebSocket connection, asked of the server behind it (both
Socket.IO transports run on uvicorn).

ASGI has no way to bound the size of an incoming WebSocket message before it is buffered,
nor to drop a connection whose peer has stopped reading (a `websocket.close` waits behind
the unsent data like any other send). uvicorn's WebSocket protocols expose both: the ASGI
`send` they hand the app is a method of the protocol object, which holds the asyncio
transport and, for the websockets-based implementations, the frame parser's size limit.

A peer that has stopped reading holds data at two levels: the transport's own buffer, and
the kernel's send buffer behind it (megabytes on a fast link). Dropping the connection must
free both: a socket merely closed keeps its unsent data in the kernel, retransmitted into a
zero window for minutes; one closed with a zero linger is reset at once and its buffer
freed.

Every function here degrades to doing nothing under a server without these objects: the
transport still refuses an oversized message when it arrives, only later and at a higher
memory cost, and a connection is still closed, only not until its buffer drains.
"""

from __future__ import annotations

import fcntl
import logging
import socket
import struct
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


def unsent_in_kernel(send: Send) -> int:
    """Bytes the kernel holds for the connection that it has not sent yet: above zero while
    the peer's receive window is closed (it does not read), or briefly in a burst."""
    return kernel_unsent(_socket(send))


def not_reading(send: Send) -> bool:
    """Whether data waits for the peer anywhere on this side: a close sent now would wait
    behind it, for as long as the peer does not read."""
    return unsent_bytes(send) > 0 or unsent_in_kernel(send) > 0


def abort(send: Send) -> bool:
    """Drop the TCP connection now (a reset), discarding whatever is still unsent, in the
    transport's buffer and in the kernel's."""
    transport = _transport(send)
    if transport is None:
        return False
    reset(transport)
    return True


def reset(transport: Any) -> None:
    """Abort an asyncio transport with a zero linger: the kernel drops its send buffer and
    answers RST rather than keep the data (and the socket) for a peer that does not read."""
    linger(transport.get_extra_info("socket"))
    transport.abort()


def linger(sock: Any) -> None:
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError as exc:  # closed meanwhile, or not a TCP socket
        log.debug("SO_LINGER not set: %r", exc)


# Linux's ioctl for the bytes of a socket's send queue not yet sent (<linux/sockios.h>).
SIOCOUTQNSD = 0x894B


def kernel_unsent(sock: Any) -> int:
    if sock is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), SIOCOUTQNSD, b"\0\0\0\0")
    except (OSError, ValueError):  # another kernel, or the socket is closed
        return 0
    return int(struct.unpack("i", raw)[0])


def _socket(send: Send) -> Any:
    transport = _transport(send)
    return None if transport is None else transport.get_extra_info("socket")
