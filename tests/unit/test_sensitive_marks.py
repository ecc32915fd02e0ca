"""The `sensitive` entry of a create body, as the draft model checks it."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.domain.errors import ValidationFailed
from tidings.domain.inputs import NotificationDraft, parse

BASE: dict[str, Any] = {"user_id": "alice", "type": "t", "title": "T", "message": "M",
                        "data": {"iban": "x", "a.b": 1}}


@pytest.mark.parametrize("marks", [
    [], ["title"], ["message", "data"], ["title", "data.iban", "data.a.b"],
])
def test_valid_marks_are_kept_in_order(marks: list[str]) -> None:
    assert parse(NotificationDraft, {**BASE, "sensitive": marks}).sensitive == marks


def test_nothing_is_sensitive_by_default() -> None:
    assert parse(NotificationDraft, BASE).sensitive == []


@pytest.mark.parametrize(("marks", "field"), [
    (["Title"], "sensitive.0"),
    (["title", "data.iban", "data.iban"], "sensitive.2"),
    (["data.missing"], "sensitive.0"),
    (["message", "data", "data.iban"], "sensitive.2"),
    (["data.\u0000"], "sensitive.0"),
    (["title"] * 101, "sensitive"),
])
def test_bad_marks_name_the_entry(marks: list[str], field: str) -> None:
    with pytest.raises(ValidationFailed) as failure:
        parse(NotificationDraft, {**BASE, "sensitive": marks})
    assert failure.value.field == field
