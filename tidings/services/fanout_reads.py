"""What the fan-out between nodes reads back from the store, so the edge that runs it
(`realtime/redis/`) reaches the store only through here.

Two reads: a notification by id, when Redis carried only a reference to it (an event too
large to publish whole); and, while Redis is down, what became visible and which statuses
moved for the users a node holds (the catch-up poll of `realtime/catchup.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tidings.crypto.cipher import FieldCipher
from tidings.domain.notification import Notification, StatusChange
from tidings.store import catchup as catchup_store
from tidings.store import notifications as notification_store
from tidings.store.database import Database


@dataclass(frozen=True, slots=True)
class Missed:
    """One catch-up read: the in-app notifications that became visible, oldest first, with
    their deliveries; the status moves; and up to when the notifications are complete
    (`now`, unless the read hit its limit: then the last instant it returned)."""

    notifications: list[Notification]
    complete_until: datetime
    changes: list[StatusChange]


class FanoutReads:
    """The fan-out's reads of notifications; sealed parts are opened with `cipher`."""

    def __init__(self, db: Database, cipher: FieldCipher | None = None) -> None:
        self._db = db
        self._cipher = cipher

    async def notifications(self, ids: Sequence[str]) -> list[Notification]:
        """These notifications (those that exist), with their deliveries."""
        async with self._db.snapshot() as conn:
            found = await notification_store.get_many(conn, ids, cipher=self._cipher)
            return await notification_store.with_deliveries(conn, found)

    async def missed(self, users: Sequence[str], after: datetime, now: datetime,
                     limit: int) -> Missed:
        """What these users' sockets missed in (after, now]: at most `limit` per query."""
        async with self._db.snapshot() as conn:
            visible = await catchup_store.visible_since(conn, users, after, now, limit,
                                                        cipher=self._cipher)
            changes = await catchup_store.statuses_since(conn, users, after, limit)
        return Missed(visible.notifications, visible.complete_until, changes)
