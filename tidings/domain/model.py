"""Domain values: statuses, media, the authenticated principal, and the notification as
clients see it. Database rows live in `store/tables.py`; HTTP schemas in `api/schemas.py`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Medium(StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    PUSH = "push"


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
    """Who is calling: the token's `sub` and `roles`."""

    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def may_create(self) -> bool:
        return bool(self.roles & PRIVILEGED_ROLES)


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_instant(value: str) -> datetime:
    """ISO 8601 to an aware UTC datetime; a value without offset is taken as UTC."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def notification_payload(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The notification object of the contract, from a `notifications` row mapping."""
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "type": row["type"],
        "title": row["title"],
        "message": row["message"],
        "channel": row["channel"],
        "priority": row["priority"],
        "status": row["status"],
        "scheduled_at": isoformat(row["scheduled_at"]),
        "created_at": isoformat(row["created_at"]),
        "delivered_at": isoformat(row["delivered_at"]),
        "read_at": isoformat(row["read_at"]),
        "data": row["data"] if row["data"] is not None else {},
    }


def status_payload(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The `notificationStatus` event body."""
    return {
        "id": row["id"],
        "status": row["status"],
        "delivered_at": isoformat(row["delivered_at"]),
        "read_at": isoformat(row["read_at"]),
    }
