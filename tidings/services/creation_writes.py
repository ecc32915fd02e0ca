"""Writing creations: each recipient's copy and delivery rows, by the media its
preferences leave, rendered, held for digests, with the idempotency key's record, all in
the caller's transaction; many creations together in one (the group commit's and a bulk
request's), falling back to one transaction each so one bad request fails only itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tidings.crypto.cipher import FieldCipher
from tidings.domain.broadcast import EVERYONE
from tidings.domain.errors import DuplicateKey, Unavailable
from tidings.domain.escalation import NewStep
from tidings.domain.feed import FEED_USER
from tidings.domain.inputs import NotificationDraft
from tidings.domain.model import Medium
from tidings.domain.notification import (
    Accepted,
    Created,
    CreateOutcome,
    NewDelivery,
    Notification,
)
from tidings.domain.template import Rendered
from tidings.services.copies import (
    CreationRequest,
    build_copies,
    feed_copy,
    hold_for_digest,
    media_by_user,
)
from tidings.services.preferences import PreferenceService
from tidings.services.templates import TemplateService
from tidings.store import broadcasts, escalations, idempotency, subscriptions
from tidings.store import notifications as store
from tidings.store.database import Connection, Database


@dataclass(frozen=True, slots=True)
class Written:
    """What writing one request produced: the answer, and the notifications it stored
    (none when the answer came from an idempotency key)."""

    outcome: CreateOutcome
    stored: list[Notification]
    fed: bool = False  # a team feed's copy was written too (its post waits in the queue)


class CreationWriter:
    """Owns the durable write of creations (the rules before it are `CreationService`'s)."""

    def __init__(self, db: Database, preferences: PreferenceService, *,
                 deliverable: frozenset[Medium], cipher: FieldCipher | None,
                 templates: TemplateService | None) -> None:
        self._db = db
        self._preferences = preferences
        # The media a provider is configured for (in-app always): the others are written
        # `skipped` at creation.
        self._deliverable = deliverable | {Medium.IN_APP}
        self._cipher = cipher
        self._templates = templates

    async def write_together(
        self, requests: list[CreationRequest],
        also: Callable[[Connection, list[Written | BaseException]], Awaitable[None]]
        | None = None,
    ) -> list[Written | BaseException]:
        """Write many creations in one transaction (the group commit's, and a bulk
        request's), with `also` in the same transaction. If it fails for any reason but an
        outage, each request is written again alone, so that one bad request (or a key
        another node took first) fails only itself; `also` then runs on its own."""
        try:
            async with self._db.begin() as conn:
                plain = [r for r in requests if r.key is None and r.addressed]
                bulk = iter(await self._write_bulk(conn, plain))
                results: list[Written | BaseException] = []
                for request in requests:
                    if request.key is None and request.addressed:
                        results.append(next(bulk))
                    else:
                        results.append(await self._write(conn, request))
                if also is not None:
                    await also(conn, results)
                return results
        except Unavailable:
            raise
        except Exception as exc:
            if len(requests) == 1 and also is None:
                return [await self._write_alone(requests[0], exc)]
        alone = [await self._settle_alone(request) for request in requests]
        if also is not None:
            async with self._db.begin() as conn:
                await also(conn, alone)
        return alone

    async def _settle_alone(self, request: CreationRequest) -> Written | BaseException:
        try:
            async with self._db.begin() as conn:
                return await self._write(conn, request)
        except DuplicateKey as exc:
            return await self._write_alone(request, exc)
        except Exception as exc:
            return exc

    async def _write_alone(self, request: CreationRequest, failure: Exception) -> Written:
        """After a failed write of this request alone: answer from its idempotency key if
        a concurrent request took it, else fail with the original error."""
        if not isinstance(failure, DuplicateKey) or request.key is None:
            raise failure
        async with self._db.begin() as conn:
            found = await idempotency.find(conn, request.principal.user_id, request.key,
                                           request.fingerprint(), cipher=self._cipher)
        if found is None:
            raise failure
        return Written(found, [])

    async def _write_bulk(
        self, conn: Connection, requests: list[CreationRequest]
    ) -> list[Written]:
        """Creations addressed to users and without idempotency key, written together: one
        preference query per (channel, type) and one INSERT per table for the batch."""
        audiences = [request.direct_audience() for request in requests]
        wanted: dict[tuple[str, str], set[str]] = {}
        for request, recipients in zip(requests, audiences, strict=True):
            key = (request.draft.channel, request.draft.type)
            wanted.setdefault(key, set()).update(recipients)
        allowed = {
            (channel, type_): await self._preferences.media_for(conn, sorted(users), channel,
                                                                type_)
            for (channel, type_), users in wanted.items()
        }
        written: list[Written] = []
        all_stored: list[Notification] = []
        all_deliveries: list[NewDelivery] = []
        all_steps: list[NewStep] = []
        for request, recipients in zip(requests, audiences, strict=True):
            draft = request.draft
            media = media_by_user(request, recipients, allowed[(draft.channel, draft.type)])
            held = await hold_for_digest(conn, request, recipients, media)
            rendered = await self._render(conn, request, recipients)
            stored, deliveries = build_copies(request, recipients, media, self._deliverable,
                                              held, rendered)
            all_stored.extend(stored)
            all_deliveries.extend(deliveries)
            all_steps.extend(request.steps_of(stored))
            written.append(Written(_outcome(draft, stored), stored, request.fed))
            if request.fed:
                await self._add_feed_copy(conn, request, all_stored, all_deliveries)
        if all_stored:
            await store.insert_many(conn, all_stored, all_deliveries, cipher=self._cipher)
        if all_steps:  # one INSERT for the batch's steps, none without escalation
            await escalations.insert_many(conn, all_steps)
        return written

    async def _write(self, conn: Connection, request: CreationRequest) -> Written:
        draft, key = request.draft, request.key
        if key is not None:
            found = await idempotency.find(conn, request.principal.user_id, key,
                                           request.fingerprint(), cipher=self._cipher)
            if found is not None:
                return Written(found, [])
        if draft.broadcast:
            return await self._broadcast(conn, request)
        if request.addressed:
            recipients = request.direct_audience()
        else:
            recipients = await subscriptions.subscribers_of(conn, draft.channel)
        allowed = await self._preferences.media_for(conn, recipients, draft.channel,
                                                    draft.type)
        media = media_by_user(request, recipients, allowed)
        held = await hold_for_digest(conn, request, recipients, media)
        rendered = await self._render(conn, request, recipients)
        stored, deliveries = build_copies(request, recipients, media, self._deliverable, held,
                                          rendered)
        steps = request.steps_of(stored)  # the users' copies only, never the feed's
        outcome = _outcome(draft, stored)
        stored_for_users = stored
        if request.fed:
            # Written with the copies, answered and emitted without: nobody's inbox.
            stored, deliveries = list(stored), list(deliveries)
            await self._add_feed_copy(conn, request, stored, deliveries)
        await store.insert_many(conn, stored, deliveries, cipher=self._cipher)
        if steps:
            await escalations.insert_many(conn, steps)
        if key is not None:
            await idempotency.record(conn, request.principal.user_id, key,
                                     request.fingerprint(), outcome, request.now,
                                     cipher=self._cipher)
        return Written(outcome, stored_for_users, request.fed)

    async def _broadcast(self, conn: Connection, request: CreationRequest) -> Written:
        """One row for every user (section 13): in-app, whatever anyone's preferences
        (the admin's broadcast is for everyone), listed through `broadcasts`."""
        rendered = await self._render(conn, request, [EVERYONE])
        stored, deliveries = build_copies(request, [EVERYONE],
                                          {EVERYONE: frozenset({Medium.IN_APP})},
                                          self._deliverable, None, rendered)
        await store.insert_many(conn, stored, deliveries, cipher=self._cipher)
        await broadcasts.insert(conn, stored[0].id, stored[0].visible_at)
        outcome = Accepted(1, request.draft.channel, broadcast_id=stored[0].id)
        if request.key is not None:
            await idempotency.record(conn, request.principal.user_id, request.key,
                                     request.fingerprint(), outcome, request.now,
                                     cipher=self._cipher)
        return Written(outcome, stored)

    async def _add_feed_copy(self, conn: Connection, request: CreationRequest,
                             stored: list[Notification],
                             deliveries: list[NewDelivery]) -> None:
        """The channel's team-feed copy of this create, appended to what is written (one
        post per create, whatever its audience: DESIGN section 14)."""
        rendered = await self._render(conn, request, [FEED_USER])
        copy, delivery = feed_copy(request, rendered)
        stored.append(copy)
        deliveries.append(delivery)

    async def _render(self, conn: Connection, request: CreationRequest,
                      recipients: Sequence[str]) -> dict[str, Rendered] | None:
        """Each recipient's rendering of the request's template (None without one). In
        the write's transaction, so the contacts read are those of the copies written;
        a failure fails the request and nothing of it is stored."""
        if request.template is None or self._templates is None:
            return None
        return await self._templates.render_for(conn, request.template,
                                                request.draft.variables or {}, recipients)


def _outcome(draft: NotificationDraft, stored: Sequence[Notification]) -> CreateOutcome:
    if draft.user_id is not None:
        return Created(stored[0])
    return Accepted(len(stored), draft.channel)
