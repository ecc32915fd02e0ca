"""What clients send, validated the same way whether it arrives over HTTP or Socket.IO."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    model_validator,
)

from tidings.domain.model import DEFAULT_CHANNEL, WILDCARD, Medium, Priority, parse_instant

# A topic name: letters, digits and `_ . -`. No `:` (room names such as `user:bob` are the
# server's own), no spaces, at most 100 characters.
CHANNEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
MAX_RECIPIENTS = 10_000


def _channel(value: str) -> str:
    if not CHANNEL_PATTERN.match(value):
        raise ValueError(
            "must be 1-100 characters of letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return value


def _channel_or_wildcard(value: str) -> str:
    return value if value == WILDCARD else _channel(value)


def _type_or_wildcard(value: str) -> str:
    if value != WILDCARD and not CHANNEL_PATTERN.match(value):
        raise ValueError("must be '*' or 1-100 characters of letters, digits, '_', '.' or '-'")
    return value


def _type_name(value: str) -> str:
    if not CHANNEL_PATTERN.match(value):
        raise ValueError("must be 1-100 characters of letters, digits, '_', '.' or '-'")
    return value


def _utc(value: datetime) -> datetime:
    return parse_instant(value.isoformat())


ChannelName = Annotated[str, AfterValidator(_channel)]
UserId = Annotated[str, Field(min_length=1, max_length=255)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NotificationDraft(_Input):
    """The body of `POST /api/notifications`."""

    user_id: UserId | None = None
    user_ids: list[UserId] | None = Field(None, min_length=1, max_length=MAX_RECIPIENTS)
    type: Annotated[str, AfterValidator(_type_name)]
    title: str = Field(..., min_length=1, max_length=1000)
    message: str = Field(..., max_length=20_000)
    channel: ChannelName = DEFAULT_CHANNEL
    priority: Priority = Priority.MEDIUM
    scheduled_at: Annotated[datetime, AfterValidator(_utc)] | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    media: list[Medium] | None = Field(None, min_length=1)
    template: str | None = Field(None, max_length=200)
    variables: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_audience(self) -> NotificationDraft:
        if self.user_id is not None and self.user_ids is not None:
            raise ValueError("give user_id or user_ids, not both")
        if self.media is not None and len(set(self.media)) != len(self.media):
            raise ValueError("media must not repeat")
        return self


class PreferenceInput(_Input):
    """One preference row; a flag left out keeps its stored value (enabled if none)."""

    channel: Annotated[str, AfterValidator(_channel_or_wildcard)] = WILDCARD
    notification_type: Annotated[str, AfterValidator(_type_or_wildcard)] = WILDCARD
    email_enabled: StrictBool | None = None
    push_enabled: StrictBool | None = None
    in_app_enabled: StrictBool | None = None


class PreferenceBatch(_Input):
    items: list[PreferenceInput] = Field(..., min_length=1, max_length=500)


class ChannelList(_Input):
    channels: list[Any] = Field(..., min_length=1, max_length=100)


class NotificationRef(_Input):
    id: str = Field(..., min_length=1, max_length=64)


class MissedRequest(_Input):
    since: Annotated[datetime, AfterValidator(_utc)]
