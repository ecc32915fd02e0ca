"""The page cursor codec: round trips, every string of the documented form is a position,
and anything else is refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tidings.domain.cursor import (
    CURSOR_PATTERN,
    DELIVERY_CURSOR_PATTERN,
    decode_cursor,
    encode_cursor,
)
from tidings.domain.errors import ValidationFailed
from tidings.domain.template import KEY_CURSOR_PATTERN, decode_key_cursor, encode_key_cursor


@pytest.mark.parametrize("key", ["0193a1b2-0000-7000-8000-000000000001", "4121"])
def test_round_trip_keeps_the_position(key: str) -> None:
    position = (datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC), key)
    cursor = encode_cursor(position)
    assert decode_cursor(cursor) == position
    assert re.fullmatch(r"[0-9A-Za-z._\-]+", cursor)  # URL-safe
    assert re.search(CURSOR_PATTERN, cursor)
    if key.isdigit():
        assert re.search(DELIVERY_CURSOR_PATTERN, cursor)


@pytest.mark.parametrize(("cursor", "when"), [
    ("0.a", datetime(1970, 1, 1, tzinfo=UTC)),
    ("999999999999999999.a", datetime.max.replace(tzinfo=UTC)),  # past year 9999
    ("-999999999999999999.a", datetime.min.replace(tzinfo=UTC)),
])
def test_a_well_formed_cursor_is_a_position_even_one_never_given_out(
    cursor: str, when: datetime
) -> None:
    """Found by schemathesis: the document called the cursor a string, and strings it had
    not made were refused. Its form is now documented, and everything of that form is a
    place in the list (positions beyond what a datetime holds are clamped to its ends)."""
    assert re.search(CURSOR_PATTERN, cursor)
    assert decode_cursor(cursor) == (when, "a")


@pytest.mark.parametrize(
    "cursor",
    ["", "not a cursor!", "12", ".id", "12.", "12.a.b", "1.a b", "x1.a", "1.a\n",
     "1234567890123456789.a", "1." + "a" * 65, "WyIyMDI2LTExLTI4VDAwOjAwOjAwWiIsICJpZCJd"],
)
def test_a_cursor_of_another_form_is_a_validation_error(cursor: str) -> None:
    # (Python's `$` matches before a final newline; JSON Schema's and pydantic's do not.)
    assert not re.search(CURSOR_PATTERN, cursor) or cursor.endswith("\n")
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor)
    assert caught.value.field == "cursor"


def test_the_key_cursor_is_a_key() -> None:
    assert decode_key_cursor(encode_key_cursor("welcome.v2")) == "welcome.v2"
    for bad in ("", "-x", "a b", "x" * 201):
        assert not re.search(KEY_CURSOR_PATTERN, bad)
        with pytest.raises(ValidationFailed):
            decode_key_cursor(bad)
