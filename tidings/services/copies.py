"""The stored copies one creation makes: one notification per recipient, and one delivery
per medium chosen for that recipient."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tidings.domain.delivery import DeliveryState
from tidings.domain.ids import uuid7
from tidings.domain.inputs import NotificationDraft
from tidings.domain.model import DeliveryStatus, Medium, Principal, Status
from tidings.domain.notification import NewDelivery, Notification
from tidings.domain.template import Rendered, Template

MediaByUser = dict[str, frozenset[Medium]]


@dataclass(frozen=True, slots=True)
class CreationRequest:
    """One `POST /api/notifications`, as the group commit carries it."""

    principal: Principal
    draft: NotificationDraft
    key: str | None
    now: datetime
    visible_at: datetime  # now, or the scheduled time when that is later
    # The template version the create names (resolved before the write), if any.
    template: Template | None = None
    # The producer's `html`, cleaned once per request.
    html: str | None = field(default=None)

    @property
    def scheduled(self) -> bool:
        return self.visible_at > self.now

    @property
    def addressed(self) -> bool:
        """Addressed to users by id (rather than to a channel's subscribers)."""
        return self.draft.user_id is not None or self.draft.user_ids is not None

    def fingerprint(self) -> str:
        """A digest of what was asked, to tell a repeat from a reuse of its key."""
        return hashlib.sha256(self.draft.model_dump_json().encode()).hexdigest()

    def direct_audience(self) -> list[str]:
        if self.draft.user_id is not None:
            return [self.draft.user_id]
        return list(dict.fromkeys(self.draft.user_ids or ()))


def build_copies(
    request: CreationRequest, recipients: Sequence[str], media: MediaByUser,
    rendered: Mapping[str, Rendered] | None = None,
) -> tuple[list[Notification], list[NewDelivery]]:
    """One stored copy per recipient, with one delivery per chosen medium; with a
    template, each copy carries its recipient's rendering."""
    draft, now, visible_at = request.draft, request.now, request.visible_at
    stored: list[Notification] = []
    deliveries: list[NewDelivery] = []
    # Recipients with the same media have the same initial delivery states: share them
    # (a channel fan-out makes 10,000 copies).
    states: dict[frozenset[Medium], tuple[DeliveryState, ...]] = {}
    for user_id in recipients:
        chosen = media[user_id]
        shared = states.get(chosen)
        if shared is None:
            shared = states[chosen] = tuple(
                DeliveryState(medium.value, status, attempts, None, now)
                for medium, status, attempts in _initial(chosen, request.scheduled)
            )
        title, message, template, content = _texts(request, rendered, user_id)
        notification = Notification(
            id=uuid7(), user_id=user_id, type=draft.type, title=title,
            message=message, channel=draft.channel, priority=draft.priority.value,
            status=Status.PENDING.value, scheduled_at=draft.scheduled_at, created_at=now,
            visible_at=visible_at, delivered_at=None, read_at=None, data=draft.data,
            in_app=Medium.IN_APP in chosen, producer=request.principal.user_id,
            deliveries=shared, template=template, content=content,
        )
        stored.append(notification)
        deliveries.extend(
            NewDelivery(notification_id=notification.id, user_id=user_id, medium=medium,
                        status=status, attempts=attempts, due_at=visible_at, created_at=now)
            for medium, status, attempts in _initial(chosen, request.scheduled)
        )
    return stored, deliveries


def _texts(
    request: CreationRequest, rendered: Mapping[str, Rendered] | None, user_id: str
) -> tuple[str, str, dict[str, Any] | None, dict[str, str] | None]:
    """(title, message, template reference, content) of one recipient's copy. The
    producer's `html` fills the email's HTML where the template gives none."""
    own = {"html": request.html} if request.html is not None else {}
    if rendered is None:
        return (request.draft.title or "", request.draft.message or "", None, own or None)
    mine = rendered[user_id]
    content = {**own, **mine.content}
    return mine.parts["title"], mine.parts["message"], mine.ref, content or None


def _initial(chosen: frozenset[Medium], scheduled: bool) -> list[tuple[Medium, str, int]]:
    """Each chosen medium's first (status, attempts). In-app goes out right after the
    commit, so it is `sent` from the start unless it waits for its schedule; email and
    push wait for the delivery workers."""
    return [
        (medium, DeliveryStatus.SENT.value, 1) if medium is Medium.IN_APP and not scheduled
        else (medium, DeliveryStatus.PENDING.value, 0)
        for medium in sorted(chosen)
    ]


def given_media(draft: NotificationDraft, recipients: Sequence[str]) -> MediaByUser | None:
    """The producer's `media`, as given, for every recipient; None: preferences decide."""
    if draft.media is None:
        return None
    chosen = frozenset(draft.media)
    return {user_id: chosen for user_id in recipients}


