"""Notifications: creation (audience, media, idempotency), the user's inbox, status changes,
missed-notification replay, and the release of scheduled notifications.

Durability first: a notification and its per-medium delivery rows are committed in one
transaction before anyone hears of it; live emission happens after the commit and is only
the fast path (a client that missed it replays from the database).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.errors import Forbidden, NotFound, ValidationFailed
from tidings.domain.ids import is_uuid, uuid7
from tidings.domain.inputs import NotificationDraft
from tidings.domain.model import (
    DeliveryStatus,
    Medium,
    Principal,
    Status,
    isoformat,
    notification_payload,
    parse_instant,
    status_payload,
    utcnow,
)
from tidings.metrics import Metrics
from tidings.realtime.fanout import Fanout
from tidings.services.batching import Batcher
from tidings.services.preferences import PreferenceService
from tidings.store import idempotency, subscriptions
from tidings.store import notifications as store
from tidings.store.database import Database
from tidings.store.notifications import ListFilter

REPLAY_CHUNK = 500
# Creations written per transaction at most, when requests arrive faster than commits.
WRITE_BATCH = 200
NOTIFICATION_EVENT = "notification"
STATUS_EVENT = "notificationStatus"


@dataclass(frozen=True)
class CreateResult:
    status_code: int  # 201: one notification; 202: an audience of several (or none)
    body: dict[str, Any]


@dataclass(frozen=True)
class _Job:
    principal: Principal
    draft: NotificationDraft
    key: str | None
    now: datetime
    visible_at: datetime
    scheduled: bool


@dataclass(frozen=True)
class _Written:
    result: CreateResult
    rows: list[dict[str, Any]]  # empty when answered from an idempotency key


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None
    unread_count: int


class NotificationService:
    def __init__(
        self,
        db: Database,
        fanout: Fanout,
        preferences: PreferenceService,
        metrics: Metrics,
        on_scheduled: Callable[[datetime], None] | None = None,
    ) -> None:
        self._db = db
        self._fanout = fanout
        self._preferences = preferences
        self._metrics = metrics
        # Told when a notification is scheduled, so the scheduler can wake early for it.
        self.on_scheduled = on_scheduled
        self._batcher: Batcher[_Job, _Written] = Batcher(self._write_batch, WRITE_BATCH)

    # -- creation -------------------------------------------------------------------------

    async def create(
        self, principal: Principal, draft: NotificationDraft, idempotency_key: str | None = None
    ) -> CreateResult:
        if not principal.may_create:
            raise Forbidden("creating notifications needs the role 'service' or 'admin'")
        if draft.template is not None:
            # Templates arrive with their own store; until then no key can resolve.
            raise ValidationFailed(f"template '{draft.template}' not found", field="template")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
            raise ValidationFailed(
                "Idempotency-Key must be 1-255 characters", field="Idempotency-Key"
            )
        now = utcnow()
        scheduled = draft.scheduled_at is not None and draft.scheduled_at > now
        job = _Job(principal, draft, idempotency_key, now,
                   draft.scheduled_at if scheduled and draft.scheduled_at else now, scheduled)
        written = await self._batcher.submit(job)
        if written.rows:
            await self._announce(job, written.rows)
        return written.result

    async def _write_batch(self, jobs: list[_Job]) -> list[_Written | BaseException]:
        """Write many creations in one transaction (see `batching.py`)."""
        try:
            async with self._db.begin() as conn:
                plain = [job for job in jobs if job.key is None and _addressed(job.draft)]
                bulk = dict(zip(map(id, plain), await self._write_bulk(conn, plain),
                                strict=True))
                return [bulk[id(job)] if id(job) in bulk else await self._write(conn, job)
                        for job in jobs]
        except sqlalchemy.exc.IntegrityError:
            if len(jobs) == 1:
                return [await self._write_alone(jobs[0])]
            # Another node committed one of these idempotency keys first; the batch rolled
            # back whole, so write each alone and let only that one answer from its key.
            results: list[_Written | BaseException] = []
            for job in jobs:
                try:
                    results.append(await self._write_alone(job))
                except Exception as exc:
                    results.append(exc)
            return results

    async def _write_alone(self, job: _Job) -> _Written:
        try:
            async with self._db.begin() as conn:
                return await self._write(conn, job)
        except sqlalchemy.exc.IntegrityError:
            if job.key is None:
                raise
            async with self._db.begin() as conn:
                found = await idempotency.find(conn, job.principal.user_id, job.key)
            if found is None:
                raise
            return _Written(CreateResult(*found), [])

    async def _write_bulk(self, conn: AsyncConnection, jobs: list[_Job]) -> list[_Written]:
        """Creations addressed to users and without idempotency key, written together: one
        preference query per (channel, type) and one INSERT per table for the batch."""
        if not jobs:
            return []
        audiences = [_direct_audience(job.draft) for job in jobs]
        wanted: dict[tuple[str, str], set[str]] = {}
        for job, recipients in zip(jobs, audiences, strict=True):
            if job.draft.media is None:
                wanted.setdefault((job.draft.channel, job.draft.type), set()).update(recipients)
        decided = {
            (channel, type_): await self._preferences.media_for(conn, sorted(users), channel,
                                                                type_)
            for (channel, type_), users in wanted.items()
        }
        written: list[_Written] = []
        all_rows: list[dict[str, Any]] = []
        all_deliveries: list[dict[str, Any]] = []
        for job, recipients in zip(jobs, audiences, strict=True):
            draft = job.draft
            media = _given_media(draft, recipients)
            if media is None:
                media = decided[(draft.channel, draft.type)]
            rows, delivery_rows = _rows(job, recipients, media)
            all_rows.extend(rows)
            all_deliveries.extend(delivery_rows)
            written.append(_Written(_answer(draft, rows), rows))
        await store.insert_many(conn, all_rows, all_deliveries)
        return written

    async def _write(self, conn: AsyncConnection, job: _Job) -> _Written:
        draft, key = job.draft, job.key
        if key is not None:
            found = await idempotency.find(conn, job.principal.user_id, key)
            if found is not None:
                return _Written(CreateResult(*found), [])
        recipients = await self._audience(conn, draft)
        media = _given_media(draft, recipients)
        if media is None:
            media = await self._preferences.media_for(conn, recipients, draft.channel,
                                                      draft.type)
        rows, delivery_rows = _rows(job, recipients, media)
        await store.insert_many(conn, rows, delivery_rows)
        result = _answer(draft, rows)
        if key is not None:
            await idempotency.record(conn, job.principal.user_id, key, result.status_code,
                                     result.body, job.now)
        return _Written(result, rows)

    async def _announce(self, job: _Job, rows: list[dict[str, Any]]) -> None:
        """After the commit: count, then emit now or wake the scheduler for later."""
        self._metrics.notifications_created.inc(len(rows))
        live = [row for row in rows if row["in_app"]]
        if not live:
            return
        if job.scheduled:
            if self.on_scheduled is not None:
                self.on_scheduled(job.visible_at)
        else:
            await self._publish(job.draft, live)

    async def _audience(self, conn: AsyncConnection, draft: NotificationDraft) -> list[str]:
        if _addressed(draft):
            return _direct_audience(draft)
        return await subscriptions.subscribers_of(conn, draft.channel)

    async def _publish(self, draft: NotificationDraft, rows: Sequence[dict[str, Any]]) -> None:
        if not _addressed(draft):
            base = notification_payload(rows[0])
            copies = {row["user_id"]: {"id": row["id"], "user_id": row["user_id"]}
                      for row in rows}
            await self._fanout.to_channel(draft.channel, NOTIFICATION_EVENT, base, copies)
        else:
            for row in rows:
                await self._fanout.to_user(
                    row["user_id"], NOTIFICATION_EVENT, notification_payload(row)
                )
        self._observe(rows[0]["visible_at"])

    def _observe(self, since: datetime) -> None:
        self._metrics.create_to_emit.observe(max(0.0, time.time() - since.timestamp()))

    # -- the user's inbox -----------------------------------------------------------------

    async def inbox(
        self, principal: Principal, flt: ListFilter, limit: int, cursor: str | None
    ) -> Page:
        before = _decode_cursor(cursor) if cursor else None
        now = utcnow()
        async with self._db.begin() as conn:
            rows = await store.list_page(conn, principal.user_id, now, flt, limit, before)
            unread = await store.count_unread(conn, principal.user_id, now, flt.channel,
                                              flt.type)
        has_more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = _encode_cursor(rows[-1].visible_at, rows[-1].id) if has_more else None
        return Page([notification_payload(row._mapping) for row in rows], next_cursor, unread)

    async def get(self, principal: Principal, notification_id: str) -> dict[str, Any]:
        _require_id(notification_id)
        async with self._db.begin() as conn:
            row = await store.get_owned(conn, principal.user_id, notification_id, utcnow())
        if row is None:
            raise NotFound("notification not found")
        return notification_payload(row._mapping)

    async def acknowledge(self, principal: Principal, notification_id: str) -> dict[str, Any]:
        """The client confirms the in-app delivery: `delivered`, unless already `read`."""
        return await self._move(principal, notification_id, Status.DELIVERED)

    async def mark_read(self, principal: Principal, notification_id: str) -> dict[str, Any]:
        return await self._move(principal, notification_id, Status.READ)

    async def _move(
        self, principal: Principal, notification_id: str, status: Status
    ) -> dict[str, Any]:
        _require_id(notification_id)
        async with self._db.begin() as conn:
            row, changed = await store.set_status(
                conn, principal.user_id, notification_id, utcnow(), status
            )
        if row is None:
            raise NotFound("notification not found")
        if changed:
            # Every socket of the user (other tabs, other devices) stays in step.
            await self._fanout.to_user(principal.user_id, STATUS_EVENT,
                                       status_payload(row._mapping))
        return notification_payload(row._mapping)

    async def delete(self, principal: Principal, notification_id: str) -> None:
        _require_id(notification_id)
        async with self._db.begin() as conn:
            deleted = await store.delete_owned(conn, principal.user_id, notification_id,
                                               utcnow())
        if not deleted:
            raise NotFound("notification not found")

    async def missed(
        self, principal: Principal, since: datetime
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The user's in-app notifications that became visible after `since`, oldest
        first, in chunks (each read in its own short transaction, so a long replay holds
        no connection while the socket drains)."""
        after: tuple[datetime, str] = (since, "~")  # "~" sorts after every id at `since`
        now = utcnow()
        while True:
            async with self._db.begin() as conn:
                rows = await store.in_app_after(conn, principal.user_id, after, now,
                                                REPLAY_CHUNK)
            if not rows:
                return
            yield [notification_payload(row._mapping) for row in rows]
            if len(rows) < REPLAY_CHUNK:
                return
            after = (rows[-1].visible_at, rows[-1].id)

    # -- scheduled notifications ----------------------------------------------------------

    async def release_due(self, limit: int) -> int:
        """Emit the in-app notifications whose scheduled time has come; returns how many."""
        now = utcnow()
        async with self._db.begin() as conn:
            ids = await store.claim_due_in_app(conn, now, limit)
            rows = await store.get_many(conn, ids)
        for row in sorted(rows, key=lambda r: (r.visible_at, r.id)):
            await self._fanout.to_user(row.user_id, NOTIFICATION_EVENT,
                                       notification_payload(row._mapping))
            self._observe(row.visible_at)
        return len(rows)

    async def next_due(self) -> datetime | None:
        async with self._db.begin() as conn:
            return await store.next_due_in_app(conn)


def _rows(
    job: _Job, recipients: Sequence[str], media: dict[str, frozenset[Medium]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    draft, now, visible_at, scheduled = job.draft, job.now, job.visible_at, job.scheduled
    rows: list[dict[str, Any]] = []
    delivery_rows: list[dict[str, Any]] = []
    for user_id in recipients:
        chosen = media[user_id]
        notification_id = uuid7()
        rows.append({
            "id": notification_id,
            "user_id": user_id,
            "type": draft.type,
            "title": draft.title,
            "message": draft.message,
            "channel": draft.channel,
            "priority": draft.priority.value,
            "status": Status.PENDING.value,
            "scheduled_at": draft.scheduled_at,
            "created_at": now,
            "visible_at": visible_at,
            "delivered_at": None,
            "read_at": None,
            "data": draft.data,
            "in_app": Medium.IN_APP in chosen,
            "producer": job.principal.user_id,
        })
        for medium in sorted(chosen):
            # In-app goes out right after the commit; it is `sent` from the start unless
            # it waits for its schedule. Email and push wait for the delivery workers.
            immediate = medium is Medium.IN_APP and not scheduled
            delivery_rows.append({
                "notification_id": notification_id,
                "user_id": user_id,
                "medium": medium.value,
                "status": (DeliveryStatus.SENT if immediate else DeliveryStatus.PENDING).value,
                "attempts": 1 if immediate else 0,
                "next_attempt_at": visible_at,
                "created_at": now,
                "updated_at": now,
            })
    return rows, delivery_rows


def _addressed(draft: NotificationDraft) -> bool:
    """Addressed to users by id (rather than to a channel's subscribers)."""
    return draft.user_id is not None or draft.user_ids is not None


def _direct_audience(draft: NotificationDraft) -> list[str]:
    if draft.user_id is not None:
        return [draft.user_id]
    return list(dict.fromkeys(draft.user_ids or ()))


def _given_media(
    draft: NotificationDraft, recipients: Sequence[str]
) -> dict[str, frozenset[Medium]] | None:
    """The producer's `media`, as given, for every recipient; None: preferences decide."""
    if draft.media is None:
        return None
    chosen = frozenset(draft.media)
    return {user_id: chosen for user_id in recipients}


def _answer(draft: NotificationDraft, rows: Sequence[dict[str, Any]]) -> CreateResult:
    if draft.user_id is not None:
        return CreateResult(201, notification_payload(rows[0]))
    return CreateResult(202, {"count": len(rows), "channel": draft.channel})


def _require_id(notification_id: str) -> None:
    # Not a UUID cannot be anyone's notification: same answer as someone else's.
    if not is_uuid(notification_id):
        raise NotFound("notification not found")


def _encode_cursor(visible_at: datetime, notification_id: str) -> str:
    raw = json.dumps([isoformat(visible_at), notification_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, notification_id = json.loads(base64.urlsafe_b64decode(padded))
        return parse_instant(when), str(notification_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise ValidationFailed("cursor is not one this server gave out", field="cursor") from exc
