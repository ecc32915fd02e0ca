"""Text from outside made storable (`domain.text`): what is replaced, what is cut, and
that storable text within its bound comes back untouched."""

from __future__ import annotations

import pytest

from tidings.domain.text import ELLIPSIS, REPLACEMENT, is_storable, storable, storable_json


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("plain", 10, "plain"),
    ("bad\x00gone", 100, f"bad{REPLACEMENT}gone"),
    ("id\ud800z", 100, f"id{REPLACEMENT}z"),
    ("\udc00\x00", 100, REPLACEMENT * 2),
    ("Grüße 😀", 100, "Grüße 😀"),
    ("x" * 300, 255, "x" * 254 + ELLIPSIS),
    ("\x00" * 300, 4, REPLACEMENT * 3 + ELLIPSIS),
    ("abc", 0, ""),
])
def test_storable_replaces_nul_and_lone_surrogates_and_cuts(
    text: str, limit: int, expected: str
) -> None:
    result = storable(text, limit)
    assert result == expected
    assert is_storable(result) and len(result) <= limit


@pytest.mark.parametrize(("text", "ok"), [
    ("fine", True), ("", True), ("a\x00", False), ("\ud800", False), ("😀", True)])
def test_is_storable(text: str, ok: bool) -> None:
    assert is_storable(text) is ok


def test_storable_json_cleans_every_key_and_string_and_keeps_the_rest() -> None:
    value = {"type": "delivery.dead", "data": {"last_error": "no\x00such", "attempts": 3,
                                               "k\ud800": [None, True, 1.5, "x" * 30]}}
    assert storable_json(value, 20) == {
        "type": "delivery.dead",
        "data": {"last_error": f"no{REPLACEMENT}such", "attempts": 3,
                 f"k{REPLACEMENT}": [None, True, 1.5, "x" * 19 + ELLIPSIS]}}
