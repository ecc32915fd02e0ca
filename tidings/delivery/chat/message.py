"""What the queue hands to a chat sender: one notification, already rendered as text, with
its links; and where a team feed posts."""

from __future__ import annotations

from dataclasses import dataclass, field

from tidings.domain.feed import FeedKind

__all__ = ["ChatMessage", "Feed", "FeedKind", "Link"]


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    notification_id: str
    title: str
    message: str
    channel: str
    type: str
    priority: str = "medium"
    url: str | None = None  # the notification's primary link
    actions: tuple[Link, ...] = field(default_factory=tuple)

    @property
    def fallback(self) -> str:
        """One line for clients that show no rich layout (notifications, previews)."""
        return f"{self.title}: {self.message}" if self.message else self.title


@dataclass(frozen=True, slots=True)
class Feed:
    """A channel's team feed: which service's format, and its incoming-webhook URL."""

    kind: FeedKind
    webhook_url: str
