"""What one attempt to hand a message to a provider came to, and the contract's rules for
telling a transient failure (retry later) from a permanent one (dead letter at once).

Every sender answers with an `Attempt` instead of raising: the queue decides what happens
next from the outcome alone, so the retry policy lives in one place and a sender never
needs to know about leases, backoff or dead letters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

# A provider's Retry-After is honoured when longer than our own delay, up to this bound.
MAX_RETRY_AFTER_S = 3600.0


class Outcome(StrEnum):
    SENT = "sent"  # the provider accepted the message
    TRANSIENT = "transient"  # try again later (timeouts, 4xx SMTP, HTTP 408/429/5xx)
    PERMANENT = "permanent"  # never retry (5xx SMTP, other HTTP 4xx, a bad address)
    GONE = "gone"  # the device or subscription no longer exists: disable it, never retry


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at one target (an address, a device or a webhook URL)."""

    outcome: Outcome
    code: str | None = None  # the provider's own code: "250", "451", "410", "UNREGISTERED"
    error: str | None = None  # for people; never holds credentials or message contents
    provider_id: str | None = None  # Message-ID, apns-id, FCM message name, ...
    retry_after_s: float | None = None  # the provider asked us to wait this long
    elapsed_s: float = 0.0
    device_id: str | None = None  # which device, for push
    provider: str | None = None  # which provider answered, where a medium has several


def classify_http(status: int) -> Outcome:
    """HTTP providers: 2xx sent; 408, 429 and 5xx transient; any other answer permanent."""
    if 200 <= status < 300:
        return Outcome.SENT
    if status in (408, 429) or status >= 500:
        return Outcome.TRANSIENT
    return Outcome.PERMANENT


def classify_smtp(code: int) -> Outcome:
    """SMTP: 2xx sent; 4xx at any stage (greylisting included) transient; 5xx permanent."""
    if 200 <= code < 400:
        return Outcome.SENT
    if 400 <= code < 500:
        return Outcome.TRANSIENT
    return Outcome.PERMANENT


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), capped
    at `MAX_RETRY_AFTER_S`; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
