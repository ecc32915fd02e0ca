"""Preferences: which media a user wants, per channel and notification type.

`*` stands for any channel or any type. For a (channel, type), the most specific row wins:
exact channel and type, then exact channel with any type, then any channel with the exact
type, then `(*, *)`. Without any row every medium is enabled.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.inputs import PreferenceInput
from tidings.domain.model import WILDCARD, Medium, utcnow
from tidings.store import preferences as store
from tidings.store.database import Database

FLAGS = {Medium.IN_APP: "in_app_enabled", Medium.EMAIL: "email_enabled",
         Medium.PUSH: "push_enabled"}


def preference_payload(row: Any) -> dict[str, Any]:
    return {
        "channel": row.channel,
        "notification_type": row.notification_type,
        "email_enabled": row.email_enabled,
        "push_enabled": row.push_enabled,
        "in_app_enabled": row.in_app_enabled,
    }


def _specificity(row: Any) -> tuple[bool, bool]:
    return (row.channel != WILDCARD, row.notification_type != WILDCARD)


def choose_media(rows: Iterable[Any]) -> frozenset[Medium]:
    """The media one user's candidate rows (all for the same channel/type) allow."""
    best = max(rows, key=_specificity, default=None)
    if best is None:
        return frozenset(Medium)
    return frozenset(medium for medium, flag in FLAGS.items() if getattr(best, flag))


class PreferenceService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def of_user(self, user_id: str) -> list[dict[str, Any]]:
        async with self._db.begin() as conn:
            return [preference_payload(row) for row in await store.list_for_user(conn, user_id)]

    async def save(self, user_id: str, items: Sequence[PreferenceInput]) -> list[dict[str, Any]]:
        """Store several preferences in one transaction: all or nothing."""
        async with self._db.begin() as conn:
            current = {
                (row.channel, row.notification_type): row
                for row in await store.list_for_user(conn, user_id)
            }
            merged = [_merge(item, current.get((item.channel, item.notification_type)))
                      for item in items]
            rows = await store.upsert_many(self._db, conn, user_id, merged, utcnow())
        return [preference_payload(row) for row in rows]

    async def media_for(
        self, conn: AsyncConnection, user_ids: Sequence[str], channel: str, type_: str
    ) -> dict[str, frozenset[Medium]]:
        by_user: dict[str, list[Row[Any]]] = {}
        for row in await store.candidates_for(conn, user_ids, channel, type_):
            by_user.setdefault(row.user_id, []).append(row)
        return {user_id: choose_media(by_user.get(user_id, ())) for user_id in user_ids}


def _merge(item: PreferenceInput, existing: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"channel": item.channel, "notification_type": item.notification_type}
    for flag in FLAGS.values():
        given = getattr(item, flag)
        if given is None:
            given = getattr(existing, flag) if existing is not None else True
        values[flag] = given
    return values
