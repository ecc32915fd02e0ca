"""The types catalogue, as admins write it (contract section 11); creates and senders
read it through each process's cache (`type_cache.py`), which every write here drops,
here after the commit and in the other processes by an invalidation."""

from __future__ import annotations

from dataclasses import dataclass

from tidings.domain.catalogue import (
    NotificationType,
    TypeDraft,
    decode_type_cursor,
    encode_type_cursor,
)
from tidings.domain.errors import NotFound
from tidings.domain.fields import is_name
from tidings.domain.model import Principal, utcnow
from tidings.services.invalidation import Invalidation
from tidings.services.type_cache import SCOPE, TypeCache
from tidings.store import catalogue as store
from tidings.store.database import Database


@dataclass(frozen=True, slots=True)
class TypePage:
    items: list[NotificationType]
    next_cursor: str | None


class CatalogueService:
    def __init__(self, db: Database, cache: TypeCache, invalidation: Invalidation) -> None:
        self._db = db
        self._cache = cache
        self._invalidation = invalidation

    async def put(self, principal: Principal, channel: str, type_: str,
                  draft: TypeDraft) -> NotificationType:
        """Create or replace the whole type."""
        item = NotificationType(channel, type_, draft.checked(channel, type_),
                                principal.user_id, utcnow())
        try:
            async with self._db.begin() as conn:
                await store.put(conn, item)
        finally:
            # Also after a failure: a commit whose answer was lost may have happened.
            self._changed(channel, type_)
        return item

    async def get(self, channel: str, type_: str) -> NotificationType:
        found = None
        if is_name(channel) and is_name(type_):
            async with self._db.begin() as conn:
                found = await store.get(conn, channel, type_)
        if found is None:
            raise NotFound(f"type {channel}/{type_} is not in the catalogue")
        return found

    async def page(self, limit: int, cursor: str | None) -> TypePage:
        after = decode_type_cursor(cursor) if cursor else None
        async with self._db.begin() as conn:
            items = await store.page(conn, limit, after)
        more = len(items) > limit
        items = items[:limit]
        last = items[-1] if items else None
        return TypePage(items, encode_type_cursor(last.channel, last.type)
                        if more and last is not None else None)

    async def delete(self, channel: str, type_: str) -> None:
        deleted = False
        if is_name(channel) and is_name(type_):
            try:
                async with self._db.begin() as conn:
                    deleted = await store.delete(conn, channel, type_)
            finally:
                self._changed(channel, type_)
        if not deleted:
            raise NotFound(f"type {channel}/{type_} is not in the catalogue")

    def _changed(self, channel: str, type_: str) -> None:
        self._cache.forget()
        self._invalidation.invalidate(SCOPE, f"{channel}/{type_}")
