"""Opaque page cursors: a position in a newest-first list, `(instant, key)`.

A cursor is handed out by one page and read back by the next. Clients treat it as opaque,
but its form is stated exactly (`CURSOR_PATTERN`, in the OpenAPI document too):
`<microseconds since the epoch>.<key>`. Every string of that form is a position, so a
well-formed cursor the server did not give out is simply a place in the list (the page
after it, perhaps empty), and only a string of another form is refused: a 422 naming
`cursor`, as any other parameter that breaks its documented schema.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tidings.domain.errors import ValidationFailed

Position = tuple[datetime, str]

# Microseconds: 18 digits reach beyond year 9999; a position past either end of what a
# datetime holds is clamped to that end (it is before or after every row all the same).
_MICROS = r"-?[0-9]{1,18}"
# The keys of the lists: notification and webhook ids (UUIDs), delivery ids (digits).
_KEY = r"[A-Za-z0-9_\-]{1,64}"
CURSOR_PATTERN = rf"^{_MICROS}\.{_KEY}$"
# The deliveries' list, whose keys are BIGINT ids.
DELIVERY_CURSOR_PATTERN = rf"^{_MICROS}\.[0-9]{{1,18}}$"
_CURSOR = re.compile(rf"({_MICROS})\.({_KEY})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)


def encode_cursor(position: Position) -> str:
    when, key = position
    if not re.fullmatch(_KEY, key):
        raise ValueError(f"a cursor key is 1-64 of [A-Za-z0-9_-], not {key!r}")
    return f"{(when - _EPOCH) // timedelta(microseconds=1)}.{key}"


def decode_cursor(cursor: str) -> Position:
    found = _CURSOR.fullmatch(cursor)
    if found is None:
        raise ValidationFailed("cursor is not one this server gave out", field="cursor")
    micros = int(found.group(1))
    try:
        when = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        when = _LAST if micros > 0 else _FIRST
    return when, found.group(2)
