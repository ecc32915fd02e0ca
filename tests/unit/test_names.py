"""Channel and type names: what may name a topic, and what may not."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tidings.domain.inputs import PreferenceInput, is_name


@pytest.mark.parametrize("name", ["orders", "a", "A.b-c_d", "9lives", "x" * 100])
def test_valid_names(name: str) -> None:
    assert is_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "x" * 101, "user:bob", "channel:x", "-lead", ".dot", "_under", "with space",
     "orders\n", "ünï", "\ud800", "*", 7, None, ["orders"]],
)
def test_invalid_names(name: object) -> None:
    assert not is_name(name)


def test_wildcard_is_a_name_only_in_preferences() -> None:
    assert PreferenceInput(channel="*", notification_type="*").channel == "*"
    with pytest.raises(ValidationError):
        PreferenceInput(channel="user:bob")
