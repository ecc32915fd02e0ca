"""The pacing rules alone (contract section 9), each instant given: quiet hours across
midnight and across both daylight-saving changes of Europe/Berlin, clock hours of the
throttle, digest windows, and who goes through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tidings.domain import pacing
from tidings.domain.contact import QuietHours
from tidings.domain.notification import Notification
from tidings.queue.digest_layout import FULL_ITEMS, plain_digest


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def quiet(start: str, end: str, zone: str | None = "Europe/Berlin") -> pacing.Quiet | None:
    return pacing.quiet_of(QuietHours(start, end), zone)


def test_no_quiet_hours_and_start_equal_to_end_defer_nothing() -> None:
    assert pacing.quiet_of(None, "Europe/Berlin") is None
    assert quiet("22:00", "22:00") is None
    assert pacing.quiet_until(at("2026-06-01T23:00:00+02:00"), None) is None


def test_quiet_hours_spanning_midnight_end_the_next_morning() -> None:
    night = quiet("22:00", "07:00")
    assert pacing.quiet_until(at("2026-06-01T23:30:00+02:00"), night) == at(
        "2026-06-02T07:00:00+02:00")
    assert pacing.quiet_until(at("2026-06-02T03:00:00+02:00"), night) == at(
        "2026-06-02T07:00:00+02:00")


def test_the_start_is_inside_and_the_end_is_not() -> None:
    night = quiet("22:00", "07:00")
    assert pacing.quiet_until(at("2026-06-01T22:00:00+02:00"), night) is not None
    assert pacing.quiet_until(at("2026-06-02T07:00:00+02:00"), night) is None
    assert pacing.quiet_until(at("2026-06-02T12:00:00+02:00"), night) is None


def test_quiet_hours_within_one_day() -> None:
    lunch = quiet("12:00", "13:30")
    assert pacing.quiet_until(at("2026-06-01T12:10:00+02:00"), lunch) == at(
        "2026-06-01T13:30:00+02:00")
    assert pacing.quiet_until(at("2026-06-01T11:59:00+02:00"), lunch) is None


def test_a_contact_without_zone_is_read_in_utc() -> None:
    night = quiet("22:00", "07:00", zone=None)
    assert pacing.quiet_until(at("2026-06-01T23:00:00+00:00"), night) == at(
        "2026-06-02T07:00:00+00:00")
    # 23:00 in Berlin is 21:00 UTC: not quiet for a UTC contact.
    assert pacing.quiet_until(at("2026-06-01T23:00:00+02:00"), night) is None


def test_an_unknown_zone_falls_back_to_utc() -> None:
    found = pacing.quiet_of(QuietHours("22:00", "07:00"), "Mars/Olympus")
    assert found is not None and str(found.zone) == "UTC"


def test_spring_forward_an_end_that_does_not_exist_moves_to_the_next_minute() -> None:
    # Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that night.
    night = quiet("22:00", "02:30")
    end = pacing.quiet_until(at("2026-03-28T23:00:00+01:00"), night)
    assert end == at("2026-03-29T03:00:00+02:00") == at("2026-03-29T01:00:00+00:00")


def test_spring_forward_a_start_that_does_not_exist_opens_at_the_next_minute() -> None:
    night = quiet("02:15", "06:00")
    assert pacing.quiet_until(at("2026-03-29T01:59:00+01:00"), night) is None
    assert pacing.quiet_until(at("2026-03-29T03:00:00+02:00"), night) == at(
        "2026-03-29T06:00:00+02:00")


def test_spring_forward_night_is_an_hour_shorter() -> None:
    night = quiet("22:00", "07:00")
    begins = at("2026-03-28T22:00:00+01:00")
    end = pacing.quiet_until(begins, night)
    assert end == at("2026-03-29T07:00:00+02:00")
    assert end is not None and end - begins == timedelta(hours=8)


def test_fall_back_night_is_an_hour_longer_and_a_repeated_end_is_its_first_time() -> None:
    # Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    night = quiet("22:00", "07:00")
    begins = at("2026-10-24T22:00:00+02:00")
    end = pacing.quiet_until(begins, night)
    assert end == at("2026-10-25T07:00:00+01:00")
    assert end is not None and end - begins == timedelta(hours=10)
    early = quiet("22:00", "02:30")
    assert pacing.quiet_until(at("2026-10-25T01:00:00+02:00"), early) == at(
        "2026-10-25T02:30:00+02:00")
    # After the first 02:30 the period is over, even while the clock shows 02:xx again.
    assert pacing.quiet_until(at("2026-10-25T02:40:00+01:00"), early) is None


def test_critical_always_goes_and_others_wait_for_the_end() -> None:
    night = quiet("22:00", "07:00")
    now = at("2026-06-01T23:00:00+02:00")
    assert pacing.verdict(now, "critical", night) == (pacing.Verdict.SEND, None)
    assert pacing.verdict(now, "high", night) == (pacing.Verdict.DEFER,
                                                  at("2026-06-02T07:00:00+02:00"))
    assert pacing.verdict(at("2026-06-01T12:00:00+02:00"), "low", night) == (
        pacing.Verdict.SEND, None)


def test_throttle_applies_to_first_tries_of_non_critical_while_on() -> None:
    assert pacing.throttled("medium", first_try=True, limit=20)
    assert not pacing.throttled("medium", first_try=False, limit=20)  # a retry
    assert not pacing.throttled("critical", first_try=True, limit=20)
    assert not pacing.throttled("medium", first_try=True, limit=0)  # off


def test_clock_hours_are_utc_and_the_excess_goes_at_the_next() -> None:
    now = at("2026-03-29T02:59:59.5+02:00")  # 00:59:59.5 UTC
    assert pacing.hour_of(now) == at("2026-03-29T00:00:00+00:00")
    assert pacing.next_hour(now) == at("2026-03-29T01:00:00+00:00")


def test_a_digest_window_closes_its_seconds_later_within_bounds() -> None:
    now = at("2026-06-01T10:00:00+00:00")
    assert pacing.window_closes(now, 90) == now + timedelta(seconds=90)
    assert pacing.window_closes(now, 0) == now + timedelta(seconds=1)
    assert pacing.window_closes(now, 10**9) == now + timedelta(days=1)


def note(n: int, *, title: str | None = None) -> Notification:
    now = at("2026-06-01T10:00:00+00:00")
    return Notification(
        id=f"n{n}", user_id="alice", type="invoice", title=title or f"Invoice {n}",
        message=f"Amount <{n}>", channel="billing", priority="medium", status="pending",
        scheduled_at=None, created_at=now, visible_at=now, delivered_at=None, read_at=None,
        data={}, in_app=False, producer="billing")


def test_the_plain_digest_lists_the_first_items_then_counts_the_rest() -> None:
    items = [note(n) for n in range(FULL_ITEMS + 3)]
    parts = plain_digest(items, "https://notify.example.test/api/preferences")
    assert parts.subject == f"{FULL_ITEMS + 3} new notifications"
    assert "Invoice 0\nAmount <0>" in parts.text and "Invoice 9" in parts.text
    assert "Invoice 10" not in parts.text and parts.text.count("and 3 more") == 1
    assert "Amount &lt;0&gt;" in parts.html and "<li>and 3 more</li>" in parts.html
    assert "https://notify.example.test/api/preferences" in parts.text
    assert parts.push_body.endswith("and 3 more")


def test_a_digest_of_one_says_so_in_the_singular() -> None:
    parts = plain_digest([note(1)], None)
    assert parts.subject == "1 new notification"
    assert "more" not in parts.text and "preferences" not in parts.text
