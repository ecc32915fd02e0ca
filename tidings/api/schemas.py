"""HTTP response shapes, for the OpenAPI document (requests reuse `domain/inputs.py`).

Routes answer with the domain records' own `to_json()`; these models document that shape,
and `tests/test_openapi_answers.py` checks every route's real answers against the published
document, so the two cannot drift apart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from tidings.domain.model import Priority, Status


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


class AudienceOut(BaseModel):
    count: int
    channel: str


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None
    unread_count: int


class PreferenceOut(BaseModel):
    channel: str
    notification_type: str
    email_enabled: bool
    push_enabled: bool
    in_app_enabled: bool


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
