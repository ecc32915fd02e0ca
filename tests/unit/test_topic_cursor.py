"""The cursor of the lists by name (a topic's subscribers, the topics): round trips for
every storable name, every string of the documented form is a place, others are refused;
and the rules of one subscriber change."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.domain.errors import ValidationFailed
from tidings.domain.topics import (
    NAME_CURSOR_PATTERN,
    SubscriberChange,
    decode_name_cursor,
    encode_name_cursor,
)

# What a user id may be: 1-255 characters, no NUL, no lone surrogate.
NAMES = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                min_size=1, max_size=255)


@given(NAMES)
def test_every_name_round_trips_through_a_cursor_of_the_documented_form(name: str) -> None:
    cursor = encode_name_cursor(name)
    assert re.fullmatch(NAME_CURSOR_PATTERN, cursor)
    assert decode_name_cursor(cursor) == name


def test_the_longest_name_fits_the_pattern() -> None:
    assert re.fullmatch(NAME_CURSOR_PATTERN, encode_name_cursor("\U0001f600" * 255))


@given(st.from_regex(NAME_CURSOR_PATTERN, fullmatch=True))
def test_every_string_of_the_form_is_a_place(cursor: str) -> None:
    place = decode_name_cursor(cursor)
    assert "\x00" not in place
    place.encode("utf-8")  # storable: no lone surrogate


@pytest.mark.parametrize("cursor", ["", "A", "abcde", "YQ==", "a b", "é", "YQ\n",
                                    "Y" * 1364])
def test_a_cursor_of_another_form_is_a_422_naming_cursor(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_name_cursor(cursor)
    assert caught.value.field == "cursor"


def test_a_change_keeps_each_id_once_in_the_order_given() -> None:
    change = SubscriberChange(add=["b", "a", "b"], remove=["c", "c"])
    assert change.checked() == (["b", "a"], ["c"])


@pytest.mark.parametrize(("add", "remove", "field"), [
    ([], [], "add"),
    ([f"a{n}" for n in range(6_000)], [f"r{n}" for n in range(4_001)], "remove"),
    (["a", "b"], ["b"], "remove"),
])
def test_a_change_the_schema_cannot_refuse_is_refused_by_its_rules(
        add: list[str], remove: list[str], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        SubscriberChange(add=add, remove=remove).checked()
    assert caught.value.field == field
