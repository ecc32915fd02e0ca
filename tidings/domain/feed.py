"""Team feeds: a channel whose every notification is posted once to a chat service's
incoming webhook (Slack, Discord, Microsoft Teams, Mattermost)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from tidings.domain.addresses import TARGET_URL_PATTERN
from tidings.domain.errors import ValidationFailed
from tidings.domain.fields import NAME_PATTERN, Text, is_name
from tidings.domain.model import isoformat

MAX_URL_LENGTH = 2048


class FeedKind(StrEnum):
    SLACK = "slack"
    DISCORD = "discord"
    TEAMS = "teams"
    MATTERMOST = "mattermost"


class FeedDraft(BaseModel):
    """The body of `PUT /api/admin/channels/{channel}/feed` (the URL's target is checked
    by the service, which may have to resolve its host)."""

    model_config = ConfigDict(extra="forbid")

    kind: FeedKind
    webhook_url: Text = Field(..., min_length=1, max_length=MAX_URL_LENGTH,
                              pattern=TARGET_URL_PATTERN)


@dataclass(frozen=True, slots=True)
class ChannelFeed:
    channel: str
    kind: FeedKind
    webhook_url: str
    created_at: datetime
    updated_at: datetime

    def to_json(self, *, reveal: bool = False) -> dict[str, Any]:
        """An incoming webhook's URL is its credential (anyone holding it may post): the
        answers show only its origin, except to the admin who just sent it."""
        return {
            "channel": self.channel,
            "kind": self.kind.value,
            "webhook_url": self.webhook_url if reveal else masked(self.webhook_url),
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


def masked(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/\u2026"


# The list of feeds goes by channel; its cursor is the last channel of a page: opaque to
# clients, and any channel name is a place in the list.
FEED_CURSOR_PATTERN = f"^{NAME_PATTERN.pattern}$"


def decode_feed_cursor(cursor: str) -> str:
    if not is_name(cursor):
        raise ValidationFailed("cursor is not one this server gave out", field="cursor")
    return cursor


# The user id of a team feed's own copy of a notification: the copy exists only to carry
# the feed's delivery row (medium chat), so that the post is retried, dead-lettered and
# replayed like any delivery. No token names an empty `sub`, so no user ever lists,
# replays or is sent this copy; answers show its `user_id` as null.
FEED_USER = ""
