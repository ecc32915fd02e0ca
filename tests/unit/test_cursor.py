"""The page cursor codec: round trips, and refuses anything it did not make."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from tidings.domain.cursor import decode_cursor, encode_cursor
from tidings.domain.errors import ValidationFailed


def test_round_trip_keeps_the_position() -> None:
    position = (datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC),
                "0193a1b2-0000-7000-8000-000000000001")
    cursor = encode_cursor(position)
    assert decode_cursor(cursor) == position
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor  # URL-safe


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 at all!",
        _b64(b"not json"),
        _b64(b'{"a": 1}'),  # JSON, wrong shape
        _b64(b'["2026-11-28T00:00:00Z"]'),  # too short
        _b64(b'[1, "id"]'),  # wrong types
        _b64(b'["yesterday", "id"]'),  # not an instant
        _b64(b'["0001-01-01T00:00:00+01:00", "id"]'),  # before the first representable UTC
        encode_cursor((datetime(2026, 1, 1, tzinfo=UTC), "x"))[:-3],  # truncated
    ],
)
def test_foreign_or_tampered_cursors_are_a_validation_error(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor)
    assert caught.value.field == "cursor"
