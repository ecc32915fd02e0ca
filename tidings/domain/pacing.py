"""The pacing rules of contract section 9, pure: when a contact's quiet hours hold an email
or push delivery back, which clock hour a send counts in, and when a digest window
closes. No I/O and no clock of their own: the worker passes `now` in, so the rules are
tested with any instant, daylight-saving changes included.

Where they apply (the worker, at claim time): a claimed delivery that falls inside quiet
hours goes back to `pending` with `deferred_until` and no try counted; one past the
hourly limit joins the (user, medium) throttle digest that closes at the next clock hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tidings.domain.contact import QuietHours
from tidings.domain.model import Priority

# The digest key the throttle folds the excess of an hour into. Producers' keys are names
# (letters, digits, `_ . -`), so this one can never be theirs.
THROTTLE_KEY = "~throttle"
MAX_WINDOW_S = 86_400


class Verdict(Enum):
    SEND = "send"  # go to the provider now
    DEFER = "defer"  # quiet hours: back to pending until they end
    FOLD = "fold"  # over the hourly limit: into the throttle digest


@dataclass(frozen=True, slots=True)
class Quiet:
    """A contact's quiet hours with the zone they are read in."""

    hours: QuietHours
    zone: ZoneInfo


def quiet_of(hours: QuietHours | None, zone_name: str | None) -> Quiet | None:
    """The contact's quiet hours, in its zone (UTC when it names none or one this system
    does not know); None when it has none or start equals end."""
    if hours is None or hours.start == hours.end:
        return None
    try:
        zone = ZoneInfo(zone_name) if zone_name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return Quiet(hours, zone)


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def wall_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant a wall-clock time on `day` names in `zone`. A time skipped by a
    daylight-saving change moves to the next minute that exists; a time that happens twice
    is its first occurrence."""
    naive = datetime.combine(day, at)
    for _ in range(24 * 60):  # a gap is at most hours long: the loop ends far sooner
        local = naive.replace(tzinfo=zone, fold=0)
        instant = local.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == naive:
            return instant
        naive += timedelta(minutes=1)
    raise ValueError(f"no existing wall-clock time after {day} {at} in {zone}")


def quiet_until(now: datetime, quiet: Quiet | None) -> datetime | None:
    """The end (UTC) of the quiet period `now` falls in, or None when it falls in none.
    Periods run from `start` to `end` on the local wall clock and may span midnight; the
    start is inside, the end is not."""
    if quiet is None:
        return None
    start, end = _clock(quiet.hours.start), _clock(quiet.hours.end)
    today = now.astimezone(quiet.zone).date()
    # The period in force may have begun yesterday (spanning midnight) or today.
    for began in (today - timedelta(days=1), today):
        ends_on = began + timedelta(days=1) if end <= start else began
        opens = wall_to_utc(began, start, quiet.zone)
        closes = wall_to_utc(ends_on, end, quiet.zone)
        if opens <= now < closes:
            return closes
    return None


def hour_of(now: datetime) -> datetime:
    """The UTC clock hour a send counts in."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def next_hour(now: datetime) -> datetime:
    """When the throttle digest of `now`'s hour is sent: the start of the next hour."""
    return hour_of(now) + timedelta(hours=1)


def window_closes(now: datetime, window_s: int) -> datetime:
    """When a digest window opened at `now` closes."""
    return now + timedelta(seconds=min(max(window_s, 1), MAX_WINDOW_S))


def throttled(priority: str, first_try: bool, limit: int) -> bool:
    """Whether the hourly limit applies to this send: not when it is off (0), not for
    `critical`, not for a retry (only a first try counts)."""
    return limit > 0 and first_try and priority != Priority.CRITICAL


def verdict(now: datetime, priority: str, quiet: Quiet | None) -> tuple[Verdict, datetime | None]:
    """Quiet hours first: a `critical` delivery always goes; any other inside quiet hours
    waits for their end. (The hourly limit is checked after, against the shared count.)"""
    if priority == Priority.CRITICAL:
        return Verdict.SEND, None
    until = quiet_until(now, quiet)
    if until is not None:
        return Verdict.DEFER, until
    return Verdict.SEND, None
