"""A producer withdraws notifications before they are due (DESIGN section 12): one by
id, or every copy of one create by its Idempotency-Key. Canceled is final: the user never
sees it, and its waiting deliveries end `skipped` in the same transaction, so no worker
and no scheduled release carries it."""

from __future__ import annotations

from tidings.crypto.cipher import FieldCipher
from tidings.domain.errors import Conflict, Forbidden, NotFound
from tidings.domain.ids import is_uuid
from tidings.domain.model import Principal, utcnow
from tidings.domain.notification import Notification
from tidings.store import inbox_states as store
from tidings.store import notifications as notification_store
from tidings.store.database import Database


class CancelService:
    def __init__(self, db: Database, cipher: FieldCipher | None = None) -> None:
        self._db = db
        self._cipher = cipher

    async def cancel(self, principal: Principal, notification_id: str) -> Notification:
        """Cancel one notification scheduled for later; Conflict if it is due or final."""
        _require_producer(principal)
        if not is_uuid(notification_id):
            raise NotFound("notification not found")
        async with self._db.begin() as conn:
            found, canceled = await store.cancel(conn, notification_id, utcnow(),
                                                 cipher=self._cipher)
            if found is None:
                raise NotFound("notification not found")
            if not canceled:
                state = "already due" if found.status == "pending" else found.status
                raise Conflict("only a notification scheduled for later can be canceled; "
                               f"this one is {state}")
            return (await notification_store.with_deliveries(conn, [found]))[0]

    async def cancel_by_key(self, principal: Principal, key: str) -> int:
        """Cancel every copy the caller's create under `key` made that is not yet due;
        how many (a repeat finds none left)."""
        _require_producer(principal)
        async with self._db.begin() as conn:
            return len(await store.cancel_by_key(conn, principal.user_id, key, utcnow()))


def _require_producer(principal: Principal) -> None:
    if not principal.may_create:
        raise Forbidden("canceling notifications needs the role 'service' or 'admin'")
