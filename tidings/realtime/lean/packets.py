"""Engine.IO v4 and Socket.IO v5 text framing: building and parsing packets, nothing else.

Everything here is a pure function on strings, so the wire format is in one place and the
rest of the package never slices packet text itself. Binary packets do not exist here: the
service speaks JSON only, and a binary packet from a client is a protocol error.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import orjson

# Engine.IO packet types (the first character of every Engine.IO packet).
OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = "0", "1", "2", "3", "4", "5", "6"
# Socket.IO packet types (the character after Engine.IO's MESSAGE `4`).
CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = (
    "0", "1", "2", "3", "4", "5", "6",
)

# Long-polling payloads join packets with the ASCII record separator.
SEPARATOR = "\x1e"
DEFAULT_NAMESPACE = "/"

PING_PACKET = PING
NOOP_PACKET = NOOP
CLOSE_PACKET = CLOSE
PROBE = "probe"
# Clients count ack ids up from 0; anything longer than this is not a client's counter.
MAX_ACK_DIGITS = 16


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow; its connection is closed."""


def _compact(value: Any) -> str:
    """Compact and unescaped, as the JS reference server writes it: fewer bytes per frame.

    orjson writes that form about eight times faster than the standard library's
    unescaping encoder, which is pure Python (every emit goes through here). What orjson
    refuses, the standard library writes escaped: a lone UTF-16 surrogate (a client may
    send one as a `\\udXXX` escape, and may get it echoed back, e.g. in the `denied` list
    of a `subscribe` ack) has no UTF-8 form, so the client decodes the same string it sent
    and the transports never meet text they cannot encode; and integers beyond 64 bits.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, separators=(",", ":"))


def open_packet(sid: str, ping_interval_ms: int, ping_timeout_ms: int,
                max_payload: int, upgrades: list[str]) -> str:
    return OPEN + _compact({
        "sid": sid,
        "upgrades": upgrades,
        "pingInterval": ping_interval_ms,
        "pingTimeout": ping_timeout_ms,
        "maxPayload": max_payload,
    })


def _namespaced(kind: str, namespace: str, body: str) -> str:
    prefix = MESSAGE + kind
    if namespace != DEFAULT_NAMESPACE:
        prefix += namespace + ","
    return prefix + body


def connect_ok(socket_sid: str) -> str:
    return MESSAGE + CONNECT + _compact({"sid": socket_sid})


def connect_error(message: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    return _namespaced(CONNECT_ERROR, namespace, _compact({"message": message}))


def event(name: str, payload: Any) -> str:
    """An EVENT on `/`; built once per emit and handed as is to every recipient."""
    return MESSAGE + EVENT + _compact([name, payload])


def event_with_json(name: str, payload_json: bytes) -> str:
    """`event(name, payload)` for a payload whose orjson text is written already: the same
    characters (orjson writes a list as `[`, its items joined by `,`, `]`), without
    writing the payload again."""
    return _event_prefix(name) + payload_json.decode() + "]"


@functools.lru_cache(maxsize=64)
def _event_prefix(name: str) -> str:
    return MESSAGE + EVENT + "[" + _compact(name) + ","


def ack(ack_id: int, value: Any) -> str:
    # A handler that returns nothing acknowledges with no arguments, as python-socketio does.
    return MESSAGE + ACK + str(ack_id) + ("[]" if value is None else _compact([value]))


def join_payload(packets: list[str]) -> str:
    return SEPARATOR.join(packets)


def split_payload(body: str) -> list[str]:
    return body.split(SEPARATOR)


@dataclass(slots=True)
class SocketPacket:
    """One parsed Socket.IO packet (the text after Engine.IO's `4`)."""

    kind: str
    namespace: str
    ack_id: int | None
    data: Any


def parse_socket_packet(text: str) -> SocketPacket:
    """Parse `<type>[/<namespace>,][<ack id>][<json>]`; raise ProtocolError otherwise."""
    if not text:
        raise ProtocolError("empty Socket.IO packet")
    kind = text[0]
    if kind in (BINARY_EVENT, BINARY_ACK):
        raise ProtocolError("binary packets are not accepted")
    if kind not in (CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR):
        raise ProtocolError(f"unknown Socket.IO packet type {kind!r}")
    position = 1
    namespace = DEFAULT_NAMESPACE
    if text.startswith("/", position):
        comma = text.find(",", position)
        if comma == -1:
            namespace, position = text[position:], len(text)
        else:
            namespace, position = text[position:comma], comma + 1
    digits_end = position
    while digits_end < len(text) and "0" <= text[digits_end] <= "9":
        digits_end += 1
    if digits_end - position > MAX_ACK_DIGITS:
        raise ProtocolError("the ack id is too long")
    ack_id = int(text[position:digits_end]) if digits_end > position else None
    body = text[digits_end:]
    data: Any = None
    if body:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: `[[[[...` nesting
            raise ProtocolError("the packet's data is not JSON") from exc
    if kind == EVENT and not (isinstance(data, list) and data and isinstance(data[0], str)):
        raise ProtocolError("an EVENT must carry [name, ...arguments]")
    return SocketPacket(kind, namespace, ack_id, data)
