"""Operators' hold on deliveries: browse them, read one's attempt history, and put dead
letters back in the queue, one or by filter.

A replay makes the delivery `pending`, due at once, with its attempt count at 0 and its
history kept; in the same transaction its notification's status is recomputed (a `failed`
one is `pending` again). After the commit the user's sockets hear of the status change and
the queue signal wakes the delivery workers, so a replayed letter does not wait for a poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tidings.domain.cursor import decode_cursor, encode_cursor
from tidings.domain.dead_letters import (
    REPLAY_CAP,
    DeliveryDetail,
    DeliveryFilter,
    ReplayCount,
    ReplayFilter,
    as_delivery_id,
    parse_delivery_id,
)
from tidings.domain.delivery import Delivery
from tidings.domain.errors import Conflict, NotFound, ValidationFailed
from tidings.domain.model import utcnow
from tidings.domain.notification import StatusChange
from tidings.services.fanout import Fanout
from tidings.services.queue_signal import QueueSignal
from tidings.store import admin_deliveries as store
from tidings.store.database import Database
from tidings.store.deliveries import refresh_statuses

# Rows per transaction of a bulk replay: short transactions, so a 10,000-row replay never
# holds locks (or SQLite's one writer) for long.
REPLAY_BATCH = 500


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    items: list[Delivery]
    next_cursor: str | None


class DeadLetterService:
    def __init__(
        self,
        db: Database,
        fanout: Fanout,
        signal: QueueSignal,
        *,
        batch_size: int = REPLAY_BATCH,
    ) -> None:
        self._db = db
        self._fanout = fanout
        self._signal = signal
        self._batch = batch_size

    async def page(self, filters: DeliveryFilter, limit: int, cursor: str | None) -> DeliveryPage:
        before = _position(cursor) if cursor else None
        async with self._db.begin() as conn:
            items = await store.list_page(conn, filters, limit, before)
        has_more = len(items) > limit
        items = items[:limit]
        last = items[-1] if has_more else None
        next_cursor = encode_cursor((last.updated_at, str(last.id))) if last else None
        return DeliveryPage(items, next_cursor)

    async def detail(self, delivery_id: str) -> DeliveryDetail:
        key = parse_delivery_id(delivery_id)
        async with self._db.begin() as conn:
            found = await store.get(conn, key)
            if found is None:
                raise NotFound("delivery not found")
            return DeliveryDetail(found, await store.history(conn, key))

    async def replay(self, delivery_id: str) -> DeliveryDetail:
        """One dead letter back in the queue; `Conflict` unless it is dead."""
        key = parse_delivery_id(delivery_id)
        now = utcnow()
        async with self._db.begin() as conn:
            if not await store.replay_one(conn, key, now):
                found = await store.get(conn, key)
                if found is None:
                    raise NotFound("delivery not found")
                raise Conflict(f"the delivery is {found.status}: only dead ones are replayed")
            delivery = await store.get(conn, key)
            assert delivery is not None  # updated a moment ago, in this transaction
            changes = await refresh_statuses(conn, [delivery.notification_id], now)
            detail = DeliveryDetail(delivery, await store.history(conn, key))
        await self._after_commit(changes, replayed=True)
        return detail

    async def replay_many(self, filters: ReplayFilter, *, dry_run: bool) -> ReplayCount:
        """Matching dead letters back in the queue, oldest id first, at most `REPLAY_CAP`
        of them, in transactions of `batch_size` rows; with `dry_run`, only counted."""
        if dry_run:
            async with self._db.begin() as conn:
                found = await store.count_dead(conn, filters, REPLAY_CAP + 1)
            return ReplayCount(min(found, REPLAY_CAP), found > REPLAY_CAP, dry_run=True)
        replayed = looked_at = after_id = 0
        while looked_at < REPLAY_CAP:
            size = min(self._batch, REPLAY_CAP - looked_at)
            async with self._db.begin() as conn:
                picked, notification_ids = await store.replay_batch(
                    conn, filters, after_id, size, utcnow())
                changes = await refresh_statuses(conn, notification_ids, utcnow())
            await self._after_commit(changes, replayed=bool(notification_ids))
            replayed += len(notification_ids)
            looked_at += len(picked)
            if len(picked) < size:
                return ReplayCount(replayed, more=False, dry_run=False)
            after_id = picked[-1]
        async with self._db.begin() as conn:
            more = await store.count_dead(conn, filters, 1, after_id) > 0
        return ReplayCount(replayed, more=more, dry_run=False)

    async def _after_commit(self, changes: Sequence[StatusChange], *, replayed: bool) -> None:
        if replayed:
            self._signal.queued()
        for change in changes:
            await self._fanout.status_changed(change)


def _position(cursor: str) -> tuple[datetime, int]:
    when, key = decode_cursor(cursor)
    delivery_id = as_delivery_id(key)
    if delivery_id is None:
        raise ValidationFailed("cursor is not one this server gave out", field="cursor")
    return when, delivery_id
