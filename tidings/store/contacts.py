"""SQL for contacts (email address, phone number, locale, zone and quiet hours of a user)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.contact import Contact, ContactChange, QuietHours
from tidings.store.database import upsert_into
from tidings.store.reference_tables import contacts

LOOKUP_SLICE = 500
_FIELDS = (contacts.c.email, contacts.c.locale, contacts.c.timezone, contacts.c.quiet_start,
           contacts.c.quiet_end, contacts.c.phone, contacts.c.slack_user_id)
_COLUMNS = (contacts.c.user_id, *_FIELDS, contacts.c.updated_at)


def _record(row: Sequence[Any]) -> Contact:
    user_id, email, locale, zone, quiet_start, quiet_end, phone, slack, updated_at = row
    quiet = QuietHours(quiet_start, quiet_end) if quiet_start and quiet_end else None
    return Contact(user_id, email, locale, zone, quiet, updated_at, phone, slack)


def _columns(change: ContactChange) -> dict[str, str | None]:
    """The columns a change writes: only those of the fields it gives."""
    values: dict[str, str | None] = {}
    for name in ("email", "phone", "slack_user_id", "locale", "timezone"):
        if name in change.given:
            values[name] = getattr(change, name)
    if "quiet_hours" in change.given:
        quiet = change.quiet_hours
        values["quiet_start"] = quiet.start if quiet else None
        values["quiet_end"] = quiet.end if quiet else None
    return values


async def get(conn: AsyncConnection, user_id: str) -> Contact | None:
    row = (await conn.execute(
        sa.select(*_COLUMNS).where(contacts.c.user_id == user_id)
    )).one_or_none()
    return _record(row) if row is not None else None


async def upsert(
    conn: AsyncConnection, user_id: str, change: ContactChange, now: datetime
) -> Contact:
    """Create or update in one statement: the fields the change leaves out keep their
    stored value, also against a concurrent writer of other fields."""
    given = _columns(change)
    stmt = upsert_into(conn, contacts).values(
        user_id=user_id, **{column.name: given.get(column.name) for column in _FIELDS},
        created_at=now, updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["user_id"],
        set_={name: stmt.excluded[name] for name in (*given, "updated_at")},
    ).returning(*_COLUMNS)
    return _record((await conn.execute(stmt)).one())


async def contact_of(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, Contact]:
    """The contacts of many users at once (for the delivery workers); users without one
    are absent from the answer."""
    found: dict[str, Contact] = {}
    unique = list(dict.fromkeys(user_ids))
    for start in range(0, len(unique), LOOKUP_SLICE):
        query = sa.select(*_COLUMNS).where(
            contacts.c.user_id.in_(unique[start : start + LOOKUP_SLICE])
        )
        for row in await conn.execute(query):
            contact = _record(row)
            found[contact.user_id] = contact
    return found
