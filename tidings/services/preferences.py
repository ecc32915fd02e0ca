"""Preferences: which media a user wants, per channel and notification type (the rules are
`domain/preference.py`'s `choose_media` and `chosen_media`)."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.domain.inputs import PreferenceInput
from tidings.domain.model import Medium, utcnow
from tidings.domain.preference import Preference, PreferenceChange, choose_media
from tidings.store import preferences as store
from tidings.store.database import Connection, Database


class PreferenceService:
    """Owns reading and writing a user's preference rows and answering, for a creation,
    which media each recipient wants."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def of_user(self, user_id: str) -> list[Preference]:
        async with self._db.begin() as conn:
            return await store.list_for_user(conn, user_id)

    async def save(self, user_id: str, items: Sequence[PreferenceInput]) -> list[Preference]:
        """Store several preferences in one transaction: all or nothing. A flag left out
        keeps its stored value, also against concurrent writers of the same row."""
        changes = [
            PreferenceChange(item.channel, item.notification_type, item.email_enabled,
                             item.push_enabled, item.in_app_enabled)
            for item in items
        ]
        async with self._db.begin() as conn:
            return await store.upsert_many(conn, user_id, changes, utcnow())

    async def media_for(
        self, conn: Connection, user_ids: Sequence[str], channel: str, type_: str
    ) -> dict[str, frozenset[Medium]]:
        """Within the caller's transaction: the media each user's preferences allow for
        (channel, type). Every create asks, whatever its `media`: those only narrow."""
        by_user = await store.candidates_for(conn, user_ids, channel, type_)
        return {user_id: choose_media(by_user.get(user_id, ())) for user_id in user_ids}
