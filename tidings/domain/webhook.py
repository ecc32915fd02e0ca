"""Webhook registrations: the events a producer may subscribe to, the registration record,
and the identity of one event as its receiver sees it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tidings.domain.addresses import TARGET_URL_PATTERN
from tidings.domain.errors import ValidationFailed
from tidings.domain.fields import Text
from tidings.domain.model import isoformat

MAX_URL_LENGTH = 2048


class WebhookEventType(StrEnum):
    """What a registration may subscribe to. The `data` of each is documented in
    docs/API.md ("Admin: dead letters and webhooks")."""

    DELIVERY_SENT = "delivery.sent"
    DELIVERY_DEAD = "delivery.dead"
    NOTIFICATION_DELIVERED = "notification.delivered"
    NOTIFICATION_READ = "notification.read"
    NOTIFICATION_CLICKED = "notification.clicked"


class WebhookDraft(BaseModel):
    """The body of `POST /api/admin/webhooks` (the URL's target is checked by the service,
    which may have to resolve its host)."""

    model_config = ConfigDict(extra="forbid")

    url: Text = Field(..., min_length=1, max_length=MAX_URL_LENGTH, pattern=TARGET_URL_PATTERN)
    events: list[WebhookEventType] = Field(..., min_length=1, max_length=len(WebhookEventType),
                                           json_schema_extra={"uniqueItems": True})


def check_events(events: Sequence[WebhookEventType]) -> None:
    """No event twice: the first repeat is a 422 naming its position (`events.N`)."""
    seen: set[WebhookEventType] = set()
    for index, event in enumerate(events):
        if event in seen:
            raise ValidationFailed(f"events.{index}: {event.value!r} is already listed",
                                   field=f"events.{index}")
        seen.add(event)


@dataclass(frozen=True, slots=True)
class Webhook:
    """One registration. The secret is shown once, in the answer that creates it."""

    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_by: str
    created_at: datetime

    def to_json(self, *, with_secret: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "created_at": isoformat(self.created_at),
        }
        if with_secret:
            body["secret"] = self.secret
        return body

    @property
    def position(self) -> tuple[datetime, str]:
        """Where it sorts in the newest-first list."""
        return (self.created_at, self.id)


def event_id(delivery_id: int) -> str:
    """The `webhook-id` of the event a delivery row carries: derived from the row, so every
    attempt (and a replay) sends the same id and receivers can de-duplicate."""
    return f"msg_{delivery_id}"


def event_payload(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """What a webhook delivery row stores: the body's `type` and `data` (the timestamp is
    the row's `created_at`, so it too is the same on every attempt)."""
    return {"type": event, "data": data}
