"""Which parts of a notification are sealed at rest, and how they are stored.

A producer marks parts sensitive by name: `title`, `message`, `data` (the whole object)
or `data.<key>` (one top-level key of it). Each is sealed on its own, with the notification
id and the part's name as associated data, so no sealed value reads anywhere but where it
was written. Stored shapes: `title` and `message` hold the sealed text itself; a sealed
`data` is `{"$enc": "<sealed>"}`, and a sealed key of it holds that object as its value.
The row's `sensitive` column lists the names, so the reader never guesses from a value's
look (a plaintext title may well start with `enc:v1:`).

Opening never fails a read: a value that cannot be opened (no keys configured, a key
removed too early, an altered or moved value) is logged, without contents, and shown as
`UNREADABLE` (`{}` for a whole `data`), so one bad row cannot poison a user's inbox.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from tidings.crypto.cipher import FieldCipher, Undecryptable, key_id_of
from tidings.domain.notification import Notification

log = logging.getLogger(__name__)

SEALED = "$enc"
UNREADABLE = "[undecryptable]"
NO_KEYS = "no encryption keys are configured (ENCRYPTION_KEYS)"


@dataclass(frozen=True, slots=True)
class Content:
    """The parts of a notification that may be sealed, as stored or as read."""

    title: str
    message: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Resealed:
    content: Content
    rewritten: int  # values now sealed under the current key that were not before
    unreadable: int  # values that could not be opened, left as they were


def _context(notification_id: str, name: str) -> str:
    return f"notification:{notification_id}:{name}"


def seal_content(cipher: FieldCipher, notification_id: str, names: Sequence[str],
                 content: Content) -> Content:
    """`content` with every named part sealed (plaintext in, stored shape out)."""
    title, message, data = content.title, content.message, dict(content.data)
    for name in names:
        context = _context(notification_id, name)
        if name == "title":
            title = cipher.seal(title.encode(), context)
        elif name == "message":
            message = cipher.seal(message.encode(), context)
        elif name == "data":
            data = {SEALED: cipher.seal(_dumps(data), context)}
        elif name.startswith("data.") and name[5:] in data:
            data[name[5:]] = {SEALED: cipher.seal(_dumps(data[name[5:]]), context)}
    return Content(title, message, data)


def open_content(cipher: FieldCipher | None, notification_id: str, names: Sequence[str],
                 content: Content) -> Content:
    """`content` with every named part opened; what cannot be opened is logged and shown
    as `UNREADABLE`."""
    title, message, data = content.title, content.message, dict(content.data)
    for name in names:
        try:
            if name == "title":
                title = _open_text(cipher, title, _context(notification_id, name))
            elif name == "message":
                message = _open_text(cipher, message, _context(notification_id, name))
            elif name == "data":
                opened = _open_json(cipher, data, _context(notification_id, name))
                data = opened if isinstance(opened, dict) else {}
            elif name.startswith("data.") and name[5:] in data:
                data[name[5:]] = _open_json(cipher, data[name[5:]],
                                            _context(notification_id, name))
        except Undecryptable as exc:
            log.error("notification %s: its sensitive %s cannot be decrypted: %s",
                      notification_id, name, exc)
            if name == "title":
                title = UNREADABLE
            elif name == "message":
                message = UNREADABLE
            elif name == "data":
                data = {}
            else:
                data[name[5:]] = UNREADABLE
    return Content(title, message, data)


def reseal_content(cipher: FieldCipher, notification_id: str, names: Sequence[str],
                   stored: Content) -> Resealed:
    """Stored `content` with every part sealed under another key sealed again under the
    current one. Parts already under the current key, and parts that cannot be opened,
    are left exactly as stored."""
    title, message, data = stored.title, stored.message, dict(stored.data)
    rewritten = unreadable = 0
    for name in names:
        context = _context(notification_id, name)
        if name in ("title", "message"):
            value: Any = title if name == "title" else message
        elif name == "data":
            value = data.get(SEALED)
        else:
            held = data.get(name[5:])
            value = held.get(SEALED) if isinstance(held, dict) else None
        if not isinstance(value, str) or key_id_of(value) is None:
            log.error("notification %s: its sensitive %s is not a sealed value",
                      notification_id, name)
            unreadable += 1
            continue
        if cipher.is_current(value):
            continue
        try:
            fresh = cipher.seal(cipher.open(value, context), context)
        except Undecryptable as exc:
            log.error("notification %s: its sensitive %s cannot be decrypted: %s",
                      notification_id, name, exc)
            unreadable += 1
            continue
        rewritten += 1
        if name == "title":
            title = fresh
        elif name == "message":
            message = fresh
        elif name == "data":
            data = {SEALED: fresh}
        else:
            data[name[5:]] = {SEALED: fresh}
    return Resealed(Content(title, message, data), rewritten, unreadable)


def seal_record(cipher: FieldCipher, notification: Notification) -> Notification:
    """The record as it is stored: its sensitive parts sealed."""
    if not notification.sensitive:
        return notification
    sealed = seal_content(cipher, notification.id, notification.sensitive,
                          _content_of(notification))
    return replace(notification, title=sealed.title, message=sealed.message, data=sealed.data)


def open_record(cipher: FieldCipher | None, notification: Notification) -> Notification:
    """The record as read back: its sensitive parts in plaintext (or `UNREADABLE`)."""
    if not notification.sensitive:
        return notification
    opened = open_content(cipher, notification.id, notification.sensitive,
                          _content_of(notification))
    return replace(notification, title=opened.title, message=opened.message, data=opened.data)


def _content_of(notification: Notification) -> Content:
    return Content(notification.title, notification.message, notification.data)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _open_text(cipher: FieldCipher | None, value: Any, context: str) -> str:
    if cipher is None:
        raise Undecryptable(NO_KEYS)
    if not isinstance(value, str):
        raise Undecryptable("not a sealed value")
    try:
        return cipher.open(value, context).decode()
    except UnicodeDecodeError:
        raise Undecryptable("the opened value is not UTF-8 text") from None


def _open_json(cipher: FieldCipher | None, value: Any, context: str) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get(SEALED), str):
        raise Undecryptable("not a sealed value")
    text = _open_text(cipher, value[SEALED], context)
    try:
        return json.loads(text)
    except ValueError:
        raise Undecryptable("the opened value is not JSON") from None
