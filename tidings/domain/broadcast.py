"""Broadcasts (contract section 13): one notification every user sees, stored once.

Its row names no user: `user_id` is the empty id, which no token can carry (a `sub` is
never empty), so no query of a user's own notifications ever finds it. The team feeds'
copies share that id (`feed.FEED_USER`); they are never in-app, and the store lists
broadcasts by a table of their own, so the two never meet. Each user's state of a
broadcast (delivered, read, seen, archived, deleted) is a row of its own, written when the
user first changes it; a user who never did sees it as it was sent.
"""

from __future__ import annotations

from typing import Any

from tidings.domain.errors import ValidationFailed
from tidings.domain.model import Medium

EVERYONE = ""


def broadcast_rules(draft: Any) -> None:
    """A broadcast (a `NotificationDraft` with `broadcast`) names no audience of its own
    and goes in-app alone, at once: an audience, another medium, a digest or escalation
    steps with it are a 422 naming the field."""
    for name in ("user_id", "user_ids", "channel"):
        if name in draft.model_fields_set:
            raise ValidationFailed(f"{name}: a broadcast goes to every user; give "
                                   f"broadcast or {name}, not both", field=name)
    if draft.media is not None and set(draft.media) != {Medium.IN_APP}:
        raise ValidationFailed("media: a broadcast goes in-app only", field="media")
    for name in ("digest", "escalation"):
        if getattr(draft, name):
            raise ValidationFailed(f"{name}: a broadcast goes in-app only, at once",
                                   field=name)
