"""HTTP response shapes, for the OpenAPI document (requests reuse `domain/inputs.py`).

Routes answer with the domain records' own `to_json()`; these models document that shape,
and `tests/test_openapi_answers.py` checks every route's real answers against the published
document, so the two cannot drift apart."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from tidings.domain.model import Priority, Status


class DeliveryStateOut(BaseModel):
    medium: str
    status: str
    attempts: int
    last_error: str | None
    updated_at: str
    digest_id: str | None
    deferred_until: str | None
    step: int = Field(..., ge=0, le=3, description="0: the create's own media; 1-3: "
                      "the escalation step that made it")


class TemplateRefOut(BaseModel):
    key: str
    version: int
    locale: str


class ActionOut(BaseModel):
    label: str
    url: str


class NotificationOut(BaseModel):
    id: str
    user_id: str
    type: str
    title: str
    message: str
    channel: str
    priority: Priority
    status: Status
    scheduled_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    read_at: datetime | None
    data: dict[str, Any]
    deliveries: list[DeliveryStateOut]
    template: TemplateRefOut | None
    seen_at: datetime | None
    archived_at: datetime | None
    clicked_at: datetime | None
    expires_at: datetime | None
    url: str | None
    actions: list[ActionOut] | None


class AudienceOut(BaseModel):
    count: int
    channel: str


class BroadcastOut(BaseModel):
    """A broadcast's answer: the one notification every user lists and acts on."""

    broadcast: Literal[True]
    id: str


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None
    unread_count: int
    unseen_count: int


class CountOut(BaseModel):
    """How many notifications the call changed."""

    count: int


class PreferenceOut(BaseModel):
    channel: str
    notification_type: str
    email_enabled: bool
    push_enabled: bool
    in_app_enabled: bool
    sms_enabled: bool
    chat_enabled: bool


class PreferenceList(BaseModel):
    items: list[PreferenceOut]


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entry for a route's error answers."""
    return {code: {"model": ErrorOut} for code in codes}


class QuietHoursOut(BaseModel):
    start: str
    end: str


class ContactOut(BaseModel):
    user_id: str
    email: str | None
    phone: str | None
    slack_user_id: str | None
    locale: str | None
    timezone: str | None
    quiet_hours: QuietHoursOut | None
    updated_at: str


class DeviceOut(BaseModel):
    id: str
    platform: str
    created_at: str
    disabled_at: str | None


class DeviceList(BaseModel):
    items: list[DeviceOut]


class PreferenceLinkOut(BaseModel):
    url: str = Field(description="`{PUBLIC_URL}/preferences/{token}`: the user's preference "
                                 "centre, signed; opens without a login")


class VapidKeyOut(BaseModel):
    public_key: str | None  # None: Web Push is not configured on this server


class BatchIn(BaseModel):
    """The body of `POST /api/notifications/batch`: each item is judged on its own, so
    items are checked against the notification schema one by one, not here."""

    items: list[Any] = Field(..., min_length=1, description=(
        "notification create bodies, as for POST /api/notifications; 1 to 1,000"))


class BatchResultOut(BaseModel):
    status: int
    notification: NotificationOut | None = None
    count: int | None = None
    channel: str | None = None
    broadcast: bool | None = None
    id: str | None = None
    error: ErrorBody | None = None


class BatchOut(BaseModel):
    results: list[BatchResultOut]
