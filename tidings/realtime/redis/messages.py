"""The messages the Redis fan-out puts on its channels, and their msgpack encoding.

One message is a map with a version (`v`), a kind (`k`), the id of the node that published
it (`o`: a node skips its own echo, since it delivered locally already) and the kind's
fields. A reader drops what it cannot decode, or of a version it does not know, rather than
failing: nodes of two releases may share a Redis during a rolling upgrade.

A notification whose encoding would exceed MAX_EVENT_BYTES travels as a reference
(`NotificationRef`): the receiving node reads the committed row from the database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import msgpack

from tidings.domain.model import isoformat, parse_instant
from tidings.domain.notification import InboxAction, InboxChange, Notification, StatusChange

VERSION = 1

NOTIFICATION = "n"
REFERENCE = "r"
STATUS = "s"
INBOX = "c"


@dataclass(frozen=True, slots=True)
class NotificationRef:
    """A notification too large to carry: its id and user, to be read from the database."""

    id: str
    user_id: str


Message = Notification | NotificationRef | StatusChange | InboxChange


@dataclass(frozen=True, slots=True)
class Envelope:
    origin: str
    message: Message


def encode(origin: str, message: Message, max_bytes: int) -> bytes:
    """The wire form; a notification larger than `max_bytes` becomes its reference."""
    body = _fields(message)
    data: bytes = msgpack.packb({"v": VERSION, "o": origin, **body}, use_bin_type=True)
    if len(data) > max_bytes and isinstance(message, Notification):
        return encode(origin, NotificationRef(message.id, message.user_id), max_bytes)
    return data


def decode(data: bytes) -> Envelope | None:
    """The message, or None for anything this version does not understand."""
    try:
        body = msgpack.unpackb(data, raw=False)
        if not isinstance(body, dict) or body.get("v") != VERSION:
            return None
        return Envelope(str(body["o"]), _message(body))
    except (ValueError, KeyError, TypeError, msgpack.UnpackException):
        return None


def _fields(message: Message) -> dict[str, Any]:
    if isinstance(message, Notification):
        return {"k": NOTIFICATION, "n": message.to_json(), "p": message.producer,
                "a": message.in_app}
    if isinstance(message, NotificationRef):
        return {"k": REFERENCE, "id": message.id, "u": message.user_id}
    if isinstance(message, StatusChange):
        return {"k": STATUS, "id": message.id, "u": message.user_id, "s": message.status,
                "d": isoformat(message.delivered_at), "r": isoformat(message.read_at)}
    return {"k": INBOX, "u": message.user_id, "a": message.action.value,
            "ids": None if message.ids is None else list(message.ids),
            "b": isoformat(message.before), "ch": message.channel, "t": message.type}


def _message(body: dict[str, Any]) -> Message:
    kind = body["k"]
    if kind == NOTIFICATION:
        note = Notification.from_json(body["n"], producer=str(body["p"]))
        return note if body["a"] else replace(note, in_app=False)
    if kind == REFERENCE:
        return NotificationRef(str(body["id"]), str(body["u"]))
    if kind == STATUS:
        return StatusChange(str(body["id"]), str(body["u"]), str(body["s"]),
                            _instant(body["d"]), _instant(body["r"]))
    if kind == INBOX:
        ids = body["ids"]
        return InboxChange(str(body["u"]), InboxAction(body["a"]),
                           ids=None if ids is None else tuple(str(item) for item in ids),
                           before=_instant(body["b"]), channel=_text(body["ch"]),
                           type=_text(body["t"]))
    raise ValueError(f"unknown kind {kind!r}")


def _instant(value: Any) -> datetime | None:
    return parse_instant(value) if value else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
