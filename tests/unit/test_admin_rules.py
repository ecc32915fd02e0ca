"""Pure rules of the admin API: delivery ids from paths, instants from queries, webhook event
lists, replay bodies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from tidings.domain.dead_letters import (
    ReplayRequest,
    as_delivery_id,
    parse_delivery_id,
    parse_instant_field,
)
from tidings.domain.errors import NotFound, ValidationFailed
from tidings.domain.webhook import WebhookEventType, check_events, event_id


@pytest.mark.parametrize(("text", "expected"), [
    ("1", 1), ("0042", 42), ("9223372036854775807", 2**63 - 1),
    ("9223372036854775808", None), ("", None), ("-1", None), ("1.0", None), (" 1", None),
    ("\u0661", None), ("12345678901234567890", None),
])
def test_delivery_ids_are_ascii_digits_within_bigint(text: str, expected: int | None) -> None:
    assert as_delivery_id(text) == expected


def test_a_path_that_is_not_an_id_is_not_found() -> None:
    assert parse_delivery_id("7") == 7
    with pytest.raises(NotFound):
        parse_delivery_id("seven")


def test_query_instants_are_utc_or_a_422_naming_the_field() -> None:
    assert parse_instant_field(None, "since") is None
    assert parse_instant_field("2026-11-27T10:00:00+01:00", "since") == datetime(
        2026, 11, 27, 9, 0, tzinfo=UTC)
    assert parse_instant_field("2026-11-27T09:00:00", "since") == datetime(
        2026, 11, 27, 9, 0, tzinfo=UTC)
    with pytest.raises(ValidationFailed) as caught:
        parse_instant_field("last tuesday", "since")
    assert caught.value.field == "since"


def test_a_repeated_event_is_named_by_its_position() -> None:
    check_events([WebhookEventType.DELIVERY_SENT, WebhookEventType.NOTIFICATION_READ])
    with pytest.raises(ValidationFailed) as caught:
        check_events([WebhookEventType.DELIVERY_DEAD, WebhookEventType.DELIVERY_SENT,
                      WebhookEventType.DELIVERY_DEAD])
    assert caught.value.field == "events.2"


def test_the_event_id_is_derived_from_the_delivery_row() -> None:
    assert event_id(4121) == event_id(4121) == "msg_4121"


def test_a_replay_body_must_ask_for_dead_letters() -> None:
    body = ReplayRequest.model_validate({"status": "dead", "since": "2026-11-01T00:00:00Z"})
    assert body.to_filter().since == datetime(2026, 11, 1, tzinfo=UTC)
    assert body.dry_run is False
    for bad in ({"status": "failed"}, {"status": "dead", "since": 5},
                {"status": "dead", "dry_run": 1}):
        with pytest.raises(ValidationError):
            ReplayRequest.model_validate(bad)
