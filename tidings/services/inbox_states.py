"""A user's inbox states (DESIGN section 12): read all, seen, archived. Each change is
told to every socket of the user (`inboxChanged`) after its commit, so other tabs and
devices restyle or drop items without a reload; a call that changed nothing tells
nobody."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.crypto.cipher import FieldCipher
from tidings.domain.errors import NotFound
from tidings.domain.ids import is_uuid
from tidings.domain.model import Principal, utcnow
from tidings.domain.notification import InboxAction, InboxChange, Notification
from tidings.services.fanout import Fanout
from tidings.services.queue_signal import QueueSignal
from tidings.store import events
from tidings.store import inbox_states as store
from tidings.store import notifications as notification_store
from tidings.store.database import Database


class InboxStates:
    """Owns the inbox states a user sets on their own notifications."""

    def __init__(self, db: Database, fanout: Fanout, signal: QueueSignal,
                 cipher: FieldCipher | None = None) -> None:
        self._db = db
        self._fanout = fanout
        self._signal = signal  # raised when `read_all` wrote webhook events
        self._cipher = cipher

    async def read_all(self, principal: Principal, channel: str | None,
                       type: str | None) -> int:
        """Every unread notification (of that channel and type) read; how many."""
        async with self._db.begin() as conn:
            now = utcnow()
            changes = await store.read_all(conn, principal.user_id, now, channel, type)
            if changes and await events.statuses_changed(conn, changes, now):
                self._signal.queued()
        if changes:
            await self._fanout.inbox_changed(InboxChange(
                principal.user_id, InboxAction.READ_ALL, before=now, channel=channel,
                type=type))
        return len(changes)

    async def seen(self, principal: Principal, ids: Sequence[str] | None) -> int:
        """Those of `ids` (None: all) not seen yet are seen now; how many."""
        wanted = None if ids is None else [i for i in dict.fromkeys(ids) if is_uuid(i)]
        if wanted == []:
            return 0
        async with self._db.begin() as conn:
            now = utcnow()
            changed = await store.mark_seen(conn, principal.user_id, now, wanted)
        if changed:
            change = (InboxChange(principal.user_id, InboxAction.SEEN, before=now)
                      if ids is None else
                      InboxChange.of_ids(principal.user_id, InboxAction.SEEN, tuple(changed)))
            await self._fanout.inbox_changed(change)
        return len(changed)

    async def archive(self, principal: Principal, notification_id: str) -> Notification:
        return await self._archived(principal, notification_id, True)

    async def unarchive(self, principal: Principal, notification_id: str) -> Notification:
        return await self._archived(principal, notification_id, False)

    async def _archived(self, principal: Principal, notification_id: str,
                        archived: bool) -> Notification:
        if not is_uuid(notification_id):
            raise NotFound("notification not found")
        async with self._db.begin() as conn:
            found, changed = await store.set_archived(
                conn, principal.user_id, notification_id, utcnow(), archived,
                cipher=self._cipher)
            if found is None:
                raise NotFound("notification not found")
            found = (await notification_store.with_deliveries(conn, [found]))[0]
        if changed:
            action = InboxAction.ARCHIVED if archived else InboxAction.UNARCHIVED
            await self._fanout.inbox_changed(
                InboxChange.of_ids(principal.user_id, action, (notification_id,)))
        return found
