"""What operators ask of the delivery table: which deliveries to list, and which dead letters
to replay. Plain values; the store turns them into SQL, the edge parses them from requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool

from tidings.domain.delivery import AttemptRecord, Delivery

# Named here too, where the admin routes have always found it.
from tidings.domain.delivery import DeliveryMedium as DeliveryMedium
from tidings.domain.errors import NotFound, ValidationFailed
from tidings.domain.fields import Instant
from tidings.domain.model import DeliveryStatus, parse_instant

# One call replays at most this many dead letters; the answer says when more were left.
REPLAY_CAP = 10_000
# Bigger than any id a BIGINT column holds: such a path cannot name a delivery.
_MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """`GET /api/admin/deliveries`: all given conditions hold; `since` is on `updated_at`."""

    status: DeliveryStatus | None = None
    medium: DeliveryMedium | None = None
    user_id: str | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which dead letters a bulk replay takes: `since <= updated_at < until` (the instant
    each delivery died), of one medium or all."""

    medium: DeliveryMedium | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryDetail:
    """One delivery with every recorded attempt: `attempts` stays a count (reset by a
    replay), `history` keeps the records, oldest first."""

    delivery: Delivery
    history: list[AttemptRecord]

    def to_json(self) -> dict[str, Any]:
        return {**self.delivery.to_json(),
                "history": [attempt.to_json() for attempt in self.history]}


@dataclass(frozen=True, slots=True)
class ReplayCount:
    """What a bulk replay did (or, dry, would do): `more` when rows beyond the cap match."""

    count: int
    more: bool
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "more": self.more, "dry_run": self.dry_run}


def parse_instant_field(value: str | None, field: str) -> datetime | None:
    """An optional ISO 8601 query value, or a 422 naming `field`."""
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise ValidationFailed(f"{field}: must be an ISO 8601 instant", field=field) from exc


def as_delivery_id(value: str) -> int | None:
    """The delivery id a string spells (ASCII digits, within BIGINT), or None."""
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > _MAX_ID:
        return None
    return int(value)


def parse_delivery_id(value: str) -> int:
    """A delivery id from a path: anything that cannot be one answers like a missing one."""
    key = as_delivery_id(value)
    if key is None:
        raise NotFound("delivery not found")
    return key


class ReplayRequest(BaseModel):
    """The body of `POST /api/admin/deliveries/replay`. Only dead letters are replayed, so
    `status` must say "dead": a body asking for anything else is refused, not widened."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["dead"]
    medium: DeliveryMedium | None = None
    since: Instant | None = None
    until: Instant | None = None
    dry_run: StrictBool = False

    def to_filter(self) -> ReplayFilter:
        return ReplayFilter(medium=self.medium, since=self.since, until=self.until)
