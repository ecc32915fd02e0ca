"""Creating notifications: who may create, the producer's rate, idempotency, templates,
and the group commit that writes many concurrent creations in one transaction (the write
itself, audience and media included, is `creation_writes.py`'s); then, after the commit,
the fan-out and the queue's wake-up.

Durability first: a notification and its per-medium delivery rows are committed in one
transaction before anyone hears of it; the fan-out after the commit is only the fast path
(a client that missed it replays from the database).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from tidings.crypto.cipher import FieldCipher
from tidings.domain.errors import Forbidden, ValidationFailed
from tidings.domain.inputs import NotificationDraft
from tidings.domain.model import DeliveryStatus, Medium, Principal, utcnow
from tidings.domain.notification import Created, CreateOutcome, Notification
from tidings.services.copies import CreationRequest, check_key
from tidings.services.creation_writes import CreationWriter, Written
from tidings.services.fanout import Fanout
from tidings.services.feed_cache import FeedCache
from tidings.services.preferences import PreferenceService
from tidings.services.queue_signal import QueueSignal
from tidings.services.rate_limits import CreateLimit
from tidings.services.templates import TemplateService
from tidings.services.type_cache import TypeCache
from tidings.store import idempotency, subscriptions
from tidings.store.database import Connection, Database
from tidings.support.batching import Batcher
from tidings.support.metrics import Metrics
from tidings.support.tracing import Traces

# Creations written per transaction at most, when requests arrive faster than commits,
# and the copies they make together (a create to 10,000 users is 10,000 rows: 200 such
# requests in one transaction would hold two million rows in memory at once).
WRITE_BATCH = 200
WRITE_ROWS = 10_000


class CreationService:
    """Owns the rules of creating: who may create, audience, media, idempotency, and the
    durable write before the fan-out."""

    def __init__(
        self,
        db: Database,
        fanout: Fanout,
        preferences: PreferenceService,
        metrics: Metrics,
        signal: QueueSignal,
        deliverable: frozenset[Medium] = frozenset(Medium),
        cipher: FieldCipher | None = None,
        templates: TemplateService | None = None,
        limit: CreateLimit | None = None,
        types: TypeCache | None = None,
        traces: Traces | None = None,
        feeds: FeedCache | None = None,
    ) -> None:
        self._db = db
        # The types catalogue (default media, required, digest); None: no catalogue.
        self._types = types
        self._traces = traces or Traces.off()
        # The producer's RATE_LIMIT_CREATES, charged per notification; None: no limit.
        self._limit = limit
        # Seals the parts producers mark sensitive; None: no keys, such drafts are refused.
        self._cipher = cipher
        self._fanout = fanout
        self._preferences = preferences
        self._metrics = metrics
        # Raised when email, push or webhook deliveries were written (the workers look
        # now) and when a notification is scheduled (the scheduler wakes early for it).
        self._signal = signal
        self._templates = templates
        self._writer = CreationWriter(db, preferences, deliverable=deliverable, cipher=cipher,
                                      templates=templates)
        # Which channels have a team feed (a create on one also writes the feed's copy).
        self._feeds = feeds
        self._batcher: Batcher[CreationRequest, Written] = Batcher(
            self._write_batch, WRITE_BATCH, weight=_rows, max_weight=WRITE_ROWS)

    async def create(
        self, principal: Principal, draft: NotificationDraft, idempotency_key: str | None = None
    ) -> CreateOutcome:
        request = await self.prepare(principal, draft, idempotency_key)
        if request.key is not None:
            # A repeat is answered before the charge: it creates nothing.
            async with self._db.begin() as conn:
                found = await idempotency.find(conn, principal.user_id, request.key,
                                               request.fingerprint(), cipher=self._cipher)
            if found is not None:
                return found
        await self.charge(principal.user_id, [request], _audience_field(draft))
        with self._traces.span("tidings.store"):
            written = await self._batcher.submit(request)
        if isinstance(written.outcome, Created):
            # Answered as JSON, and emitted (first) as the same JSON: written once, here.
            with contextlib.suppress(TypeError):  # what orjson refuses: each its own way
                written.outcome.notification.to_json_bytes()
        if written.stored or written.fed:
            await self.announce(request, written.stored, fed=written.fed)
        return written.outcome

    async def prepare(
        self, principal: Principal, draft: NotificationDraft, idempotency_key: str | None
    ) -> CreationRequest:
        """The rules a create must pass before anything is written."""
        if not principal.may_create:
            raise Forbidden("creating notifications needs the role 'service' or 'admin'")
        if draft.broadcast and not principal.is_admin:
            raise Forbidden("a broadcast needs the role 'admin'")
        draft.check_broadcast()
        draft.check_content()
        if draft.sensitive and self._cipher is None:
            # Never store in plaintext what the producer asked to have sealed.
            raise ValidationFailed(
                "encryption at rest is not configured on this server (ENCRYPTION_KEYS), so "
                "nothing can be marked sensitive", field="sensitive")
        check_key(idempotency_key)
        template = None
        if draft.template is not None:
            if self._templates is None:
                raise ValidationFailed("template: templates are not available here",
                                       field="template")
            template = await self._templates.resolve(draft.template)
        html = await asyncio.to_thread(draft.cleaned_html) if draft.html is not None else None
        now = utcnow()
        draft.check_expiry(now)
        due = draft.scheduled_at
        # The catalogue is cached whole: a type not in it costs no query either.
        kind = await self._types.find(draft.channel, draft.type) if self._types else None
        # A broadcast goes in-app alone: no team feed posts it.
        fed = (not draft.broadcast and self._feeds is not None
               and draft.channel in await self._feeds.channels())
        return CreationRequest(principal, draft, idempotency_key, now,
                               due if due is not None and due > now else now,
                               template, html, kind, trace=self._traces.current(), fed=fed)

    async def charge(self, producer: str, requests: Sequence[CreationRequest],
                     field: str) -> None:
        """Count against the producer's RATE_LIMIT_CREATES the notifications `requests`
        will store: one per recipient, one per subscriber of a channel (counted now; who
        subscribes between this count and the write is not charged). All or nothing:
        RateLimited or PayloadTooLarge (naming `field`) and nothing is counted."""
        if self._limit is None or not self._limit.active:
            return
        count = sum(len(r.direct_audience()) for r in requests if r.addressed)
        count += sum(1 for r in requests if r.draft.broadcast)  # one row for everyone
        channels = [r.draft.channel for r in requests
                    if not r.addressed and not r.draft.broadcast]
        if channels:
            async with self._db.begin() as conn:
                sizes = await subscriptions.subscriber_counts(conn, channels)
            count += sum(sizes.get(channel, 0) for channel in channels)
        await self._limit.check(producer, count, field)

    # -- writing --------------------------------------------------------------------------

    async def _write_batch(
        self, requests: list[CreationRequest]
    ) -> list[Written | BaseException]:
        return await self._writer.write_together(requests)

    async def write_together(
        self, requests: list[CreationRequest],
        also: Callable[[Connection, list[Written | BaseException]], Awaitable[None]]
        | None = None,
    ) -> list[Written | BaseException]:
        """Many creations in one transaction, with `also` in it (`CreationWriter`)."""
        return await self._writer.write_together(requests, also)

    # -- after the commit -----------------------------------------------------------------

    async def announce(self, request: CreationRequest, stored: list[Notification], *,
                       fed: bool = False) -> None:
        """Count, wake the delivery workers, then emit now or wake the scheduler for
        later."""
        self._metrics.notifications_created.inc(len(stored))
        if fed or any(
            state.medium != Medium.IN_APP and state.status == DeliveryStatus.PENDING
            for n in stored for state in n.deliveries
        ):
            self._signal.queued()
        if stored and request.escalation:
            # Steps were written: the steps' loop looks by the first one's time.
            start = request.draft.scheduled_at or request.now
            first = min(plan.after_seconds for plan in request.escalation)
            self._signal.escalated(start + timedelta(seconds=first))
        live = [notification for notification in stored if notification.in_app]
        if not live:
            return
        if not request.scheduled:
            with self._traces.span("tidings.fanout", attributes={"tidings.copies": len(live)}):
                await self._fanout.notify(live)
        else:
            self._signal.scheduled(request.visible_at)


def _rows(request: CreationRequest) -> int:
    """The copies a request makes, as far as known before its write: a channel's
    subscribers are read by the write itself, so a channel create weighs one."""
    user_ids = request.draft.user_ids
    return len(user_ids) if user_ids is not None else 1


def _audience_field(draft: NotificationDraft) -> str:
    """The field that makes a create's size, for an answer that it is too large."""
    if draft.user_ids is not None:
        return "user_ids"
    if draft.broadcast:
        return "broadcast"
    return "user_id" if draft.user_id is not None else "channel"

