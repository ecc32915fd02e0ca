"""Preferences: which media a user wants, per channel and notification type (the rules are
`domain/preference.py`'s `choose_media` and `chosen_media`). Creations read them through
this process's cache (`preference_cache.py`); every write of them goes through here, or
tells it (`changed`), so that the cache is dropped after each commit."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.domain.inputs import PreferenceInput
from tidings.domain.model import Medium, utcnow
from tidings.domain.preference import Preference, PreferenceChange, choose_media
from tidings.services.invalidation import Invalidation
from tidings.services.preference_cache import MAX_ROWS, SCOPE, PreferenceCache
from tidings.store import preferences as store
from tidings.store.database import Connection, Database

EVERY_MEDIUM = frozenset(Medium)


class PreferenceService:
    """Owns reading and writing a user's preference rows and answering, for a creation,
    which media each recipient wants."""

    def __init__(self, db: Database, cache: PreferenceCache,
                 invalidation: Invalidation) -> None:
        self._db = db
        self._cache = cache
        self._invalidation = invalidation

    async def of_user(self, user_id: str) -> list[Preference]:
        async with self._db.begin() as conn:
            return await store.list_for_user(conn, user_id)

    async def save(self, user_id: str, items: Sequence[PreferenceInput]) -> list[Preference]:
        """Store several preferences in one transaction: all or nothing. A flag left out
        keeps its stored value, also against concurrent writers of the same row."""
        changes = [
            PreferenceChange(item.channel, item.notification_type, item.email_enabled,
                             item.push_enabled, item.in_app_enabled, item.sms_enabled,
                             item.chat_enabled)
            for item in items
        ]
        try:
            async with self._db.begin() as conn:
                return await store.upsert_many(conn, user_id, changes, utcnow())
        finally:
            # Also after a failure: a commit whose answer was lost may have happened.
            self.changed(user_id)

    def changed(self, user_id: str) -> None:
        """After the commit of a change of `user_id`'s rows (here or by another service):
        this process's next create reads them anew, and so do the others' once told."""
        self._cache.forget(user_id)
        self._invalidation.invalidate(SCOPE, user_id)

    async def media_for(
        self, conn: Connection, user_ids: Sequence[str], channel: str, type_: str
    ) -> dict[str, frozenset[Medium]]:
        """Within the caller's transaction: the media each user's preferences allow for
        (channel, type). Every create asks, whatever its `media`: those only narrow."""
        rows = await self._rows_of(conn, user_ids)
        allowed: dict[str, frozenset[Medium]] = {}
        for user_id in user_ids:
            mine = rows[user_id]
            allowed[user_id] = (choose_media(row for row in mine
                                             if row.applies_to(channel, type_))
                                if mine else EVERY_MEDIUM)
        return allowed

    async def _rows_of(self, conn: Connection,
                       user_ids: Sequence[str]) -> dict[str, tuple[Preference, ...]]:
        """Each user's rows, from the cache or else read (in the caller's transaction)
        and cached, unless a change was dropped from the cache meanwhile."""
        entries = self._cache.entries
        ticket = entries.ticket()
        found, missed = entries.get_many(list(dict.fromkeys(user_ids)))
        if missed:
            read = await store.rows_of(conn, missed)
            fresh = {user_id: tuple(read.get(user_id, ())) for user_id in missed}
            entries.put_many({user_id: rows for user_id, rows in fresh.items()
                                  if len(rows) <= MAX_ROWS}, ticket)
            found.update(fresh)
        return found
