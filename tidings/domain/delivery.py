"""Deliveries: one medium's way of bringing a notification to its user (or one event to a
webhook), its states, and the rule that derives a notification's status from them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tidings.domain.model import DeliveryStatus, Medium, Status, isoformat


class DeliveryMedium(StrEnum):
    """Every medium a delivery row can have: the user-facing ones (`Medium`) and webhook
    events, which go to a producer's endpoint rather than to a user."""

    IN_APP = "in_app"
    EMAIL = "email"
    PUSH = "push"
    SMS = "sms"
    CHAT = "chat"
    WEBHOOK = "webhook"


ENDED = frozenset({DeliveryStatus.DEAD, DeliveryStatus.SKIPPED})


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """What every notification's JSON shows of each of its deliveries."""

    medium: str
    status: str
    attempts: int
    last_error: str | None
    updated_at: datetime
    digest_id: str | None = None
    deferred_until: datetime | None = None
    step: int = 0  # the escalation step that made it (contract section 12); 0: the create

    def to_json(self) -> dict[str, Any]:
        return {
            "medium": self.medium,
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "updated_at": isoformat(self.updated_at),
            "digest_id": self.digest_id,
            "deferred_until": isoformat(self.deferred_until),
            "step": self.step,
        }


def unconfigured(medium: str) -> str:
    """Why a medium without a provider on this server is skipped."""
    return f"no {medium.replace('_', '-')} provider is configured"


def unserved_state(medium: str, created_at: datetime) -> DeliveryState:
    """The state of a medium skipped at creation for want of a provider: what its row
    would show, made at read time (no row is written for it)."""
    return DeliveryState(medium, DeliveryStatus.SKIPPED, 0, unconfigured(medium), created_at)


def with_unserved(states: Iterable[DeliveryState], unserved: Iterable[str],
                  created_at: datetime) -> tuple[DeliveryState, ...]:
    """A notification's deliveries as shown: its rows' and its unserved media, by step and
    medium (the order the rows are read in)."""
    shown = [*states, *(unserved_state(medium, created_at) for medium in unserved)]
    return tuple(sorted(shown, key=lambda state: (state.step, state.medium)))


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery as operators see it (`/api/admin/deliveries`)."""

    id: int
    notification_id: str
    user_id: str
    medium: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    updated_at: datetime
    provider_message_id: str | None = None
    webhook_id: str | None = None
    event: str | None = None
    step: int = 0  # the escalation step that made it (0: the create, or a webhook event)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "notification_id": self.notification_id,
            # A team feed's post belongs to no user (`FEED_USER`, the empty id).
            "user_id": self.user_id or None,
            "medium": self.medium,
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "next_attempt_at": isoformat(self.next_attempt_at),
            "updated_at": isoformat(self.updated_at),
            "provider_message_id": self.provider_message_id,
            "step": self.step,
        }
        if self.webhook_id is not None:
            body["webhook_id"] = self.webhook_id
            body["event"] = self.event
        return body


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One recorded try of a delivery (per device, for push)."""

    at: datetime
    outcome: str
    code: str | None
    error: str | None
    provider_id: str | None
    device_id: str | None
    elapsed_ms: int = 0
    provider: str | None = None  # which provider answered, where a medium has several

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "at": isoformat(self.at),
            "outcome": self.outcome,
            "code": self.code,
            "error": self.error,
            "provider_id": self.provider_id,
            "device_id": self.device_id,
            "elapsed_ms": self.elapsed_ms,
        }


def aggregate_status(current: str, deliveries: Iterable[tuple[str, str]]) -> str:
    """A notification's status from its deliveries' (medium, status) pairs (contract
    section 8): `read` once read; else `delivered` once any delivery is sent or delivered;
    else `failed` once every delivery has ended (dead or skipped) and one is dead; else
    `pending`.

    In-app is the exception the contract's section 6 makes: its `sent` means "emitted to
    the sockets there were", and only the client's ack (`delivered`) confirms it, so an
    in-app delivery counts as delivered when acked and has not ended while `sent`.
    Webhook deliveries concern the producer, not the user: they do not count.
    """
    if current == Status.READ:
        return current
    seen = [(medium, status) for medium, status in deliveries
            if medium != DeliveryMedium.WEBHOOK]
    for medium, status in seen:
        if status == DeliveryStatus.DELIVERED or (
            status == DeliveryStatus.SENT and medium != Medium.IN_APP
        ):
            return Status.DELIVERED
    if current == Status.DELIVERED:
        return current  # acked before the deliveries' rows said so
    if seen and all(status in ENDED for _, status in seen) and any(
        status == DeliveryStatus.DEAD for _, status in seen
    ):
        return Status.FAILED
    return Status.PENDING
