"""`choose_media`: the most specific preference row wins; no row enables every medium."""

from __future__ import annotations

import pytest

from tidings.domain.model import Medium
from tidings.domain.preference import Preference, choose_media, chosen_media

ALL = frozenset(Medium)


def row(channel: str, type_: str, *, email: bool = True, push: bool = True,
        in_app: bool = True) -> Preference:
    return Preference(channel, type_, email, push, in_app)


def test_no_row_enables_every_medium() -> None:
    assert choose_media([]) == ALL


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # exact channel and type beat everything else
        ([row("*", "*", email=False), row("orders", "*", push=False),
          row("*", "shipped", in_app=False), row("orders", "shipped")], ALL),
        # exact channel with any type beats any channel with exact type
        ([row("*", "shipped", email=False), row("orders", "*", push=False)],
         ALL - {Medium.PUSH}),
        # any channel with exact type beats the catch-all
        ([row("*", "*", in_app=False), row("*", "shipped", email=False)],
         ALL - {Medium.EMAIL}),
        ([row("*", "*", email=False, push=False, in_app=False)],
         frozenset({Medium.SMS, Medium.CHAT})),
    ],
)
def test_most_specific_row_wins(rows: list[Preference], expected: frozenset[Medium]) -> None:
    assert choose_media(rows) == expected
    assert choose_media(reversed(rows)) == expected  # order of the rows does not matter


@pytest.mark.parametrize(
    ("considered", "allowed", "required", "expected"),
    [
        # the create's media narrow; the recipient's opt-out still applies
        (frozenset({Medium.EMAIL}), ALL - {Medium.EMAIL}, False, frozenset()),
        (frozenset({Medium.EMAIL, Medium.IN_APP}), ALL - {Medium.EMAIL}, False,
         frozenset({Medium.IN_APP})),
        (ALL, ALL - {Medium.PUSH}, False, ALL - {Medium.PUSH}),
        (frozenset({Medium.PUSH}), ALL, False, frozenset({Medium.PUSH})),
        # only a required type goes through an opt-out, and only for the media considered
        (frozenset({Medium.EMAIL}), frozenset(), True, frozenset({Medium.EMAIL})),
    ],
)
def test_the_create_media_narrow_and_preferences_still_apply(
    considered: frozenset[Medium], allowed: frozenset[Medium], required: bool,
    expected: frozenset[Medium],
) -> None:
    assert chosen_media(considered, allowed, required=required) == expected
