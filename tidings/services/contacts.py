"""Contacts: who may read and write whose, and the write itself (the checks of what a
contact may hold are `domain/contact.py`'s)."""

from __future__ import annotations

from tidings.domain import pacing
from tidings.domain.contact import Contact, ContactChange
from tidings.domain.errors import NotFound
from tidings.domain.model import Principal, utcnow
from tidings.services.queue_signal import QueueSignal
from tidings.store import contacts as store
from tidings.store import pacing as pacing_store
from tidings.store.database import Database

# The fields that decide when quiet hours are: a change of either moves what waits.
QUIET_FIELDS = frozenset({"quiet_hours", "timezone"})

ME = "me"


def subject_of(caller: Principal, user_id: str) -> str:
    """The user a `/api/users/{user_id}/...` path names for this caller: `me` is the
    caller; a service or admin may name anyone; a plain user naming someone else gets
    `NotFound`, the same answer as for a user without a contact, so nothing leaks."""
    if user_id == ME or user_id == caller.user_id:
        return caller.user_id
    if caller.may_create:
        return user_id
    raise NotFound("no contact for that user")


class ContactService:
    def __init__(self, db: Database, signal: QueueSignal) -> None:
        self._db = db
        # Raised when deliveries became due by a change of quiet hours: the workers look now.
        self._signal = signal

    async def get(self, caller: Principal, user_id: str) -> Contact:
        subject = subject_of(caller, user_id)
        async with self._db.begin() as conn:
            found = await store.get(conn, subject)
        if found is None:
            raise NotFound("no contact for that user")
        return found

    async def put(self, caller: Principal, user_id: str, change: ContactChange) -> Contact:
        """Create or update the contact; fields the change leaves out keep their value. A
        change of quiet hours or zone applies to what already waits for the old quiet
        hours, in the same transaction: due now if the new ones let it go, else at their
        end (contract section 9)."""
        subject = subject_of(caller, user_id)
        now = utcnow()
        async with self._db.begin() as conn:
            contact = await store.upsert(conn, subject, change, now)
            if not change.given & QUIET_FIELDS:
                return contact
            until = pacing.quiet_until(now, pacing.quiet_of(contact.quiet_hours,
                                                            contact.timezone))
            moved = await pacing_store.reschedule_deferred(conn, subject, now, until or now)
        if moved and until is None:
            self._signal.queued()
        return contact
