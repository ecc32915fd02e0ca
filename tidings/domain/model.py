"""Domain values: statuses, media, priorities, the authenticated principal, and instants.
Records (a notification, a preference) live beside this module; database rows in
`store/tables.py`; HTTP schemas in `api/schemas.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    # Final: a producer withdrew it before it was due (DESIGN section 12); its user never
    # sees it, and no medium carries it.
    CANCELED = "canceled"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Medium(StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    PUSH = "push"
    SMS = "sms"
    CHAT = "chat"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"
    SKIPPED = "skipped"


PRIVILEGED_ROLES = frozenset({"service", "admin"})
DEFAULT_CHANNEL = "default"
WILDCARD = "*"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's `sub` and `roles`, and when the token expires (unix
    seconds, leeway included; None: never)."""

    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    expires_at: float | None = None

    @property
    def may_create(self) -> bool:
        return bool(self.roles & PRIVILEGED_ROLES)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:  # the store's and the clock's instants already are UTC
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def parse_instant(value: str) -> datetime:
    """ISO 8601 to an aware UTC datetime; a value without offset is taken as UTC. A value
    whose UTC instant falls outside the representable range raises ValueError."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("the instant is out of range") from exc
