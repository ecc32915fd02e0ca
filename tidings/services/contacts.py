"""Contacts: who may read and write whose, and the write itself (the checks of what a
contact may hold are `domain/contact.py`'s)."""

from __future__ import annotations

from tidings.domain.contact import Contact, ContactChange
from tidings.domain.errors import NotFound
from tidings.domain.model import Principal, utcnow
from tidings.store import contacts as store
from tidings.store.database import Database

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
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, caller: Principal, user_id: str) -> Contact:
        subject = subject_of(caller, user_id)
        async with self._db.begin() as conn:
            found = await store.get(conn, subject)
        if found is None:
            raise NotFound("no contact for that user")
        return found

    async def put(self, caller: Principal, user_id: str, change: ContactChange) -> Contact:
        """Create or update the contact; fields the change leaves out keep their value."""
        subject = subject_of(caller, user_id)
        async with self._db.begin() as conn:
            return await store.upsert(conn, subject, change, utcnow())
