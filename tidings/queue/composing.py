"""The rules that turn a stored notification into a message's parts, whatever sends it:
the texts (rendered or plain), how long a push may wait, how urgent a digest is, and
whether anything may still carry it."""

from __future__ import annotations

from datetime import datetime

from tidings.domain.model import Priority
from tidings.domain.notification import Notification
from tidings.domain.template import fallback_parts

DEFAULT_TTL_S = 86_400


def push_ttl(notification: Notification, now: datetime) -> int:
    """How long push services may hold it: a day, or until it expires if sooner."""
    if notification.expires_at is None:
        return DEFAULT_TTL_S
    return max(1, min(DEFAULT_TTL_S, int((notification.expires_at - now).total_seconds())))


def withdrawn(notification: Notification, now: datetime) -> str | None:
    """Why no medium may carry the notification any more (canceled, expired), or None."""
    if notification.live_at(now):
        return None
    return "the notification was canceled" if notification.status == "canceled" else (
        "the notification expired")


def urgency(priority: str) -> int:
    """A digest push is as urgent as its most urgent item (the enum lists low to critical)."""
    ranks = list(Priority)
    return ranks.index(Priority(priority)) if priority in ranks else 1


def parts_of(notification: Notification) -> dict[str, str]:
    """The email and push parts: those rendered from a template (or the producer's HTML)
    where the notification keeps them, else the rules for plain notifications."""
    return {**fallback_parts(notification.title, notification.message),
            **(notification.content or {})}
