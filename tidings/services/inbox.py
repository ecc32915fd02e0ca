"""A user's own notifications: the paged list with its unread count, one notification,
status changes (ack, read), deletion, and the replay of what a socket missed.

Every operation is scoped to the caller: another user's notification id answers exactly
like a missing one (404), so ids reveal nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from tidings.crypto.cipher import FieldCipher
from tidings.domain.cursor import decode_cursor, encode_cursor
from tidings.domain.errors import NotFound
from tidings.domain.ids import is_uuid
from tidings.domain.model import Principal, Status, utcnow
from tidings.domain.notification import InboxChange, InboxFilter, Notification, StatusChange
from tidings.services.fanout import Fanout
from tidings.services.queue_signal import QueueSignal
from tidings.services.replay import ReplayReader
from tidings.store import events
from tidings.store import notifications as store
from tidings.store.database import Database

REPLAY_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Notification]
    next_cursor: str | None
    unread_count: int
    unseen_count: int


class InboxService:
    """Owns what a user may see and do with their own notifications, and tells every
    socket of the user when a status changes or an item leaves the inbox."""

    def __init__(self, db: Database, fanout: Fanout, signal: QueueSignal,
                 cipher: FieldCipher | None = None) -> None:
        self._db = db
        self._cipher = cipher  # opens the parts sealed at rest
        self._fanout = fanout
        # Raised when a status change wrote webhook events: the workers look now.
        self._signal = signal
        # Replays of many sockets at once (a reconnect storm) share their reads.
        self.replays = ReplayReader(db, REPLAY_CHUNK, cipher=cipher)

    async def page(
        self, principal: Principal, filters: InboxFilter, limit: int, cursor: str | None
    ) -> Page:
        before = decode_cursor(cursor) if cursor else None
        now = utcnow()
        async with self._db.snapshot() as conn:
            items = await store.list_page(conn, principal.user_id, now, filters, limit, before,
                                          cipher=self._cipher)
            has_more = len(items) > limit
            items = await store.with_deliveries(conn, items[:limit])
            unread, unseen = await store.count_unread(conn, principal.user_id, now, filters)
        next_cursor = encode_cursor(items[-1].position) if has_more else None
        return Page(items, next_cursor, unread, unseen)

    async def get(self, principal: Principal, notification_id: str) -> Notification:
        _require_id(notification_id)
        async with self._db.snapshot() as conn:
            found = await store.get_owned(conn, principal.user_id, notification_id, utcnow(),
                                          cipher=self._cipher)
            if found is None:
                raise NotFound("notification not found")
            return (await store.with_deliveries(conn, [found]))[0]

    async def acknowledge(self, principal: Principal, notification_id: str) -> Notification:
        """The client confirms the in-app delivery: `delivered`, unless already `read`."""
        return await self._change_status(principal, notification_id, Status.DELIVERED)

    async def mark_read(self, principal: Principal, notification_id: str) -> Notification:
        return await self._change_status(principal, notification_id, Status.READ)

    async def _change_status(
        self, principal: Principal, notification_id: str, status: Status
    ) -> Notification:
        _require_id(notification_id)
        async with self._db.begin() as conn:
            now = utcnow()
            found, changed = await store.set_status(conn, principal.user_id, notification_id,
                                                    now, status, cipher=self._cipher)
            if found is None:
                raise NotFound("notification not found")
            found = (await store.with_deliveries(conn, [found]))[0]
            if changed and await events.statuses_changed(conn, [StatusChange.of(found)], now):
                self._signal.queued()
        if changed:
            # Every socket of the user (other tabs, other devices) stays in step.
            await self._fanout.status_changed(StatusChange.of(found))
        return found

    async def delete(self, principal: Principal, notification_id: str) -> None:
        _require_id(notification_id)
        async with self._db.begin() as conn:
            deleted = await store.delete_owned(conn, principal.user_id, notification_id,
                                               utcnow())
        if not deleted:
            raise NotFound("notification not found")
        # After the commit: a tab that hears of it and reloads finds the item gone.
        await self._fanout.inbox_changed(InboxChange.deleted(principal.user_id,
                                                             (notification_id,)))

    async def missed(
        self, principal: Principal, since: datetime
    ) -> AsyncIterator[list[Notification]]:
        """The user's in-app notifications that became visible after `since`, oldest
        first, in chunks (each read in its own short transaction, shared with the other
        replays reading at that moment, so a long replay holds no connection while the
        socket drains). The caller stops iterating when its socket goes away."""
        after: tuple[datetime, str] = (since, "~")  # "~" sorts after every id at `since`
        now = utcnow()
        while True:
            chunk = await self.replays.read(principal.user_id, after, now)
            if not chunk:
                return
            yield chunk
            if len(chunk) < self.replays.chunk:
                return
            after = chunk[-1].position


def _require_id(notification_id: str) -> None:
    # Not a UUID cannot be anyone's notification: same answer as someone else's.
    if not is_uuid(notification_id):
        raise NotFound("notification not found")
