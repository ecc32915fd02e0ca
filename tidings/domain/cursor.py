"""Opaque page cursors: a position in a newest-first list, `(visible_at, id)`.

A cursor is handed out by one page and only ever read back by the next; anything that does
not decode to a position (tampered, truncated, from another API) is a 422 naming `cursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from tidings.domain.errors import ValidationFailed
from tidings.domain.model import isoformat, parse_instant
from tidings.domain.text import is_storable

Position = tuple[datetime, str]


def encode_cursor(position: Position) -> str:
    when, key = position
    raw = json.dumps([isoformat(when), key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, key = json.loads(base64.urlsafe_b64decode(padded))
        # A key with a NUL or a lone surrogate was never given out (and no database could
        # compare with it).
        if not isinstance(when, str) or not isinstance(key, str) or not is_storable(key):
            raise TypeError("not a position")
        return parse_instant(when), key
    except (ValueError, TypeError, binascii.Error, OverflowError) as exc:
        raise ValidationFailed("cursor is not one this server gave out", field="cursor") from exc
