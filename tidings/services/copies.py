"""The stored copies one creation makes: one notification per recipient, and one delivery
per medium chosen for that recipient."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tidings.domain.catalogue import NotificationType
from tidings.domain.delivery import DeliveryState, unconfigured
from tidings.domain.errors import ValidationFailed
from tidings.domain.escalation import NewStep, StepPlan, new_steps, plans_of
from tidings.domain.feed import FEED_USER
from tidings.domain.ids import uuid7
from tidings.domain.inputs import NotificationDraft, is_idempotency_key
from tidings.domain.model import DeliveryStatus, Medium, Principal, Status
from tidings.domain.notification import NewDelivery, Notification, rank_of
from tidings.domain.pacing import window_closes
from tidings.domain.preference import chosen_media
from tidings.domain.template import Rendered, Template
from tidings.store import pacing as pacing_store
from tidings.store.database import Connection
from tidings.store.pacing import Window

MediaByUser = dict[str, frozenset[Medium]]
# (user, medium) -> the digest window that user's deliveries of that medium are held for.
HeldFor = dict[tuple[str, str], Window]
# In-app is never held; chat has no sender of its own yet (always skipped).
FEED_MEDIA = frozenset({Medium.CHAT})
HELD_MEDIA = frozenset({Medium.EMAIL, Medium.PUSH, Medium.SMS})


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
    # The (channel, type) in the types catalogue, if it is: its default media, whether it
    # goes through opt-outs, its digest (contract section 11).
    kind: NotificationType | None = None
    # The create's traceparent (tracing on): its deliveries' sends join its trace.
    trace: str | None = None
    # Its channel has a team feed: the write adds the feed's copy (one post per create).
    fed: bool = False

    @property
    def required(self) -> bool:
        """Whether the type goes through recipients' opt-outs."""
        return self.kind is not None and self.kind.spec.required

    @property
    def considered(self) -> frozenset[Medium]:
        """The create's `media`, else the type's default media, else every medium (a
        broadcast: in-app alone)."""
        if self.draft.broadcast:
            return frozenset({Medium.IN_APP})
        if self.draft.media is not None:
            return frozenset(self.draft.media)
        media = self.kind.media if self.kind is not None else None
        return media if media is not None else frozenset(Medium)

    @property
    def digest(self) -> tuple[str, int] | None:
        """(key, window seconds): the create's digest, else its type's, unless the create
        is scheduled (a window opens when a delivery is held, and a scheduled one is not
        due yet: the create itself may not combine the two)."""
        if self.draft.digest is not None:
            return self.draft.digest.key, self.draft.digest.window_seconds
        if self.draft.broadcast:
            return None
        spec = self.kind.spec if self.kind is not None else None
        if spec is None or spec.digest_key is None or spec.digest_window is None \
                or self.draft.scheduled_at is not None:
            return None
        return spec.digest_key, spec.digest_window

    @property
    def scheduled(self) -> bool:
        return self.visible_at > self.now

    @property
    def addressed(self) -> bool:
        """Addressed to users by id (rather than to a channel's subscribers)."""
        return self.draft.user_id is not None or self.draft.user_ids is not None

    def fingerprint(self) -> str:
        """A digest of what was asked, to tell a repeat from a reuse of its key."""
        # Fields added later count only when given, so keys kept before they existed
        # still match.
        draft = self.draft
        exclude = {name for name in ("expires_at", "url", "actions", "escalation")
                   if getattr(draft, name) is None}
        if not draft.sensitive:
            exclude.add("sensitive")
        if not draft.broadcast:
            exclude.add("broadcast")
        return hashlib.sha256(draft.model_dump_json(exclude=exclude or None).encode()
                              ).hexdigest()

    @property
    def escalation(self) -> tuple[StepPlan, ...]:
        """The create's steps, else its type's (none when the create names `[]`)."""
        if self.draft.escalation is not None:
            return plans_of(step.model_dump(mode="json") for step in self.draft.escalation)
        if self.draft.broadcast:
            return ()
        steps = self.kind.spec.escalation if self.kind is not None else None
        return plans_of(steps) if steps else ()

    def steps_of(self, stored: Sequence[Notification]) -> list[NewStep]:
        """The step rows of these copies (none without escalation: no query then)."""
        plans = self.escalation
        if not plans:
            return []
        start = self.draft.scheduled_at or self.now  # section 12: scheduled_at or created_at
        own = self.draft.digest
        digest = (own.key, own.window_seconds) if own is not None else None
        return [row for notification in stored
                for row in new_steps(notification.id, plans, start, self.now, digest)]

    def direct_audience(self) -> list[str]:
        if self.draft.user_id is not None:
            return [self.draft.user_id]
        return list(dict.fromkeys(self.draft.user_ids or ()))


def held_pairs(recipients: Sequence[str], media: MediaByUser) -> list[tuple[str, str]]:
    """The (user, medium) pairs a create with `digest` holds: email and push only."""
    return [(user_id, medium) for user_id in recipients
            for medium in sorted(media[user_id] & HELD_MEDIA)]


def build_copies(
    request: CreationRequest, recipients: Sequence[str], media: MediaByUser,
    deliverable: frozenset[Medium] = frozenset(Medium),
    held: HeldFor | None = None,
    rendered: Mapping[str, Rendered] | None = None,
) -> tuple[list[Notification], list[NewDelivery]]:
    """One stored copy per recipient, with one delivery per chosen medium: `skipped` from
    the start for a medium no provider is configured for (shown as a delivery, but kept on
    the copy as `unserved` rather than written as a row: most creates on a server without
    every provider would write more such rows than real ones); those in `held` wait,
    `pending`, for their digest; with a template, each copy carries its recipient's
    rendering."""
    draft, now, visible_at = request.draft, request.now, request.visible_at
    stored: list[Notification] = []
    deliveries: list[NewDelivery] = []
    # Recipients with the same media have the same initial delivery states: share them
    # (a channel fan-out makes 10,000 copies).
    states: dict[frozenset[Medium], tuple[DeliveryState, ...]] = {}
    rank = rank_of(draft.priority)
    unserved_of: dict[frozenset[Medium], tuple[str, ...]] = {}
    for user_id in recipients:
        chosen = media[user_id]
        unserved = unserved_of.get(chosen)
        if unserved is None:
            unserved = unserved_of[chosen] = tuple(sorted(
                medium.value for medium in chosen
                if medium is not Medium.IN_APP and medium not in deliverable))
        shared = None if held else states.get(chosen)
        if shared is None:
            shared = tuple(
                DeliveryState(medium, status, attempts, error, now,
                              digest_id=_digest_of(held, user_id, medium))
                for medium, status, attempts, error in _initial(chosen, request.scheduled,
                                                                 deliverable)
            )
            if not held:
                states[chosen] = shared
        title, message, template, content = _texts(request, rendered, user_id)
        notification = Notification(
            id=uuid7(), user_id=user_id, type=draft.type, title=title,
            message=message, channel=draft.channel, priority=draft.priority,
            status=Status.PENDING, scheduled_at=draft.scheduled_at, created_at=now,
            visible_at=visible_at, delivered_at=None, read_at=None, data=draft.data,
            in_app=Medium.IN_APP in chosen, producer=request.principal.user_id,
            sensitive=tuple(draft.sensitive),
            deliveries=shared, template=template, content=content,
            expires_at=draft.expires_at, url=draft.url,
            actions=[action.model_dump() for action in draft.actions] if draft.actions
            else None,
            idempotency_key=request.key, unserved=unserved,
        )
        stored.append(notification)
        deliveries.extend(
            NewDelivery(notification_id=notification.id, user_id=user_id,
                        medium=Medium(state.medium), status=state.status,
                        attempts=state.attempts,
                        due_at=_due(held, user_id, Medium(state.medium), visible_at),
                        created_at=now, last_error=state.last_error,
                        digest_id=state.digest_id, trace=request.trace, rank=rank)
            for state in shared if state.medium not in unserved
        )
    return stored, deliveries


def feed_copy(request: CreationRequest,
              rendered: Mapping[str, Rendered] | None = None,
              ) -> tuple[Notification, NewDelivery]:
    """The copy a create leaves for its channel's team feed: one chat delivery, pending
    whatever the create's media and anyone's preferences (DESIGN section 14), due when
    the notification is visible; never in-app."""
    stored, deliveries = build_copies(request, [FEED_USER], {FEED_USER: FEED_MEDIA},
                                      FEED_MEDIA, None, rendered)
    return stored[0], deliveries[0]


def _digest_of(held: HeldFor | None, user_id: str, medium: Medium) -> str | None:
    window = held.get((user_id, medium)) if held else None
    return window.id if window else None


def _due(held: HeldFor | None, user_id: str, medium: Medium, visible_at: datetime) -> datetime:
    """A held delivery is due with its window's close; any other when visible."""
    window = held.get((user_id, medium)) if held else None
    return window.closes_at if window else visible_at


def _initial(
    chosen: frozenset[Medium], scheduled: bool, deliverable: frozenset[Medium]
) -> list[tuple[Medium, str, int, str | None]]:
    """Each chosen medium's first (status, attempts, last error). In-app goes out right
    after the commit, so it is `sent` from the start unless it waits for its schedule;
    email and push wait for the delivery workers, unless no provider of theirs is
    configured: then they end `skipped` at once, and no worker spends a claim on them."""
    initial: list[tuple[Medium, str, int, str | None]] = []
    for medium in sorted(chosen):
        if medium is Medium.IN_APP:
            if scheduled:
                initial.append((medium, DeliveryStatus.PENDING, 0, None))
            else:
                initial.append((medium, DeliveryStatus.SENT, 1, None))
        elif medium in deliverable:
            initial.append((medium, DeliveryStatus.PENDING, 0, None))
        else:
            initial.append((medium, DeliveryStatus.SKIPPED, 0, unconfigured(medium.value)))
    return initial


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


def media_by_user(request: CreationRequest, recipients: Sequence[str],
                  allowed: MediaByUser) -> MediaByUser:
    """Each recipient's media: those the request considers (its `media`, else its
    type's default media, else every medium), narrowed by what the recipient's
    preferences allow (`allowed`), unless the request's type is required. A create's
    `media` never turns on what a recipient turned off."""
    considered = request.considered
    return {user_id: chosen_media(considered, allowed[user_id], required=request.required)
            for user_id in recipients}


def check_key(idempotency_key: str | None) -> None:
    if idempotency_key is not None and not is_idempotency_key(idempotency_key):
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 printable ASCII characters",
            field="Idempotency-Key")


async def hold_for_digest(conn: Connection, request: CreationRequest, recipients: Sequence[str],
                media: MediaByUser) -> HeldFor | None:
    """With a digest (the create's, else its type's): the window each recipient's email
    and push join (opened now, closing `window_seconds` later, unless one is open
    already), in the creating transaction."""
    digest = request.digest
    if digest is None:
        return None
    pairs = held_pairs(recipients, media)
    if not pairs:
        return None
    key, window_seconds = digest
    closes = window_closes(request.now, window_seconds)
    return await pacing_store.open_windows(conn, pairs, key, closes, request.now)
