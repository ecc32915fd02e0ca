"""Templates: the admin's catalogue (versions, checks on save, preview) and the rendering
of a create for its recipients, in each one's locale and zone (from their contact)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidings.domain.errors import Conflict, DuplicateKey, NotFound, ValidationFailed
from tidings.domain.model import Principal, utcnow
from tidings.domain.template import (
    PreviewRequest,
    Rendered,
    Template,
    TemplateDraft,
    decode_key_cursor,
    encode_key_cursor,
    is_key,
    normalise_locale,
)
from tidings.services.invalidation import Invalidation
from tidings.services.template_cache import SCOPE, TemplateCache
from tidings.store import contacts
from tidings.store import templates as store
from tidings.store.database import Connection, Database
from tidings.templates.engine import Audience, TemplateEngine

# Tries of a PUT whose next version a concurrent PUT took first.
VERSION_TRIES = 5


@dataclass(frozen=True, slots=True)
class TemplatePage:
    items: list[Template]
    next_cursor: str | None


class TemplateService:
    def __init__(self, db: Database, engine: TemplateEngine,
                 cache: TemplateCache | None = None,
                 invalidation: Invalidation | None = None) -> None:
        self._db = db
        self._engine = engine
        # The latest versions creates resolve, kept per process; a save or a delete drops
        # the key here at once and, through `invalidation`, in the other processes.
        self._cache = cache
        self._invalidation = invalidation

    def _changed(self, key: str) -> None:
        """After the commit of a save or delete of `key`."""
        if self._cache is not None:
            self._cache.forget(key)
        if self._invalidation is not None:
            self._invalidation.invalidate(SCOPE, key)

    async def _checked(self, draft: TemplateDraft) -> tuple[str, dict[str, dict[str, str]]]:
        """The draft's default locale and variants, every part compiled (a 422 names the
        first that does not)."""
        default, variants = draft.checked()
        # Compiling up to 64 KB per part is CPU work: off the event loop.
        await asyncio.to_thread(self._engine.check, variants)
        return default, variants

    async def create(self, principal: Principal, draft: TemplateDraft) -> Template:
        """Version 1 of a new key; 409 if the key exists."""
        default, variants = await self._checked(draft)
        template = Template(draft.key, 1, default, variants, principal.user_id, utcnow())
        try:
            async with self._db.begin() as conn:
                await store.insert(conn, template)
        except DuplicateKey as exc:
            raise Conflict(f"template {draft.key} exists: PUT makes a new version",
                           field="key") from exc
        # A create may have cached the key as absent.
        self._changed(draft.key)
        return template

    async def update(self, principal: Principal, key: str, draft: TemplateDraft) -> Template:
        """A new version of an existing key."""
        if draft.key != key:
            raise ValidationFailed("key: must match the key in the path", field="key")
        default, variants = await self._checked(draft)
        for _ in range(VERSION_TRIES):
            async with self._db.begin() as conn:
                latest = await store.latest_version(conn, key)
                if latest is None:
                    raise NotFound(f"template {key} not found")
                template = Template(key, latest + 1, default, variants, principal.user_id,
                                    utcnow())
                try:
                    await store.insert(conn, template)
                except DuplicateKey:
                    continue
            self._changed(key)
            return template
        raise Conflict(f"template {key} is being changed concurrently; try again", field="key")

    async def page(self, limit: int, cursor: str | None) -> TemplatePage:
        after = decode_key_cursor(cursor) if cursor else None
        async with self._db.begin() as conn:
            items = await store.latest_page(conn, limit, after)
        more = len(items) > limit
        items = items[:limit]
        return TemplatePage(items, encode_key_cursor(items[-1].key) if more else None)

    async def get(self, key: str, version: int | None = None) -> Template:
        found = None
        if is_key(key):
            async with self._db.begin() as conn:
                found = await store.get(conn, key, version)
        if found is None:
            raise NotFound(f"template {key} not found" if version is None
                           else f"template {key} has no version {version}")
        return found

    async def delete(self, key: str) -> None:
        """Every version goes; notifications made from it keep their rendered text."""
        if not is_key(key):
            raise NotFound(f"template {key} not found")
        async with self._db.begin() as conn:
            if not await store.delete(conn, key):
                raise NotFound(f"template {key} not found")
        self._changed(key)

    async def preview(self, key: str, version: int | None, request: PreviewRequest) -> Rendered:
        template = await self.get(key, version)
        locale = normalise_locale(request.locale, "locale") if request.locale else None
        audience = Audience(locale, None)
        rendered = await self._engine.render_many(template, request.variables, [audience])
        return rendered[audience]

    # -- creates --------------------------------------------------------------------------

    async def resolve(self, key: str) -> Template:
        """The latest version of the key a create names; unknown: 422 naming `template`."""
        found = None
        if is_key(key):
            if self._cache is not None:
                found = await self._cache.latest(key)
            else:
                async with self._db.begin() as conn:
                    found = await store.get(conn, key)
        if found is None:
            raise ValidationFailed(f"template: no template {key!r}", field="template")
        return found

    async def render_for(
        self, conn: Connection, template: Template, variables: Mapping[str, Any],
        recipients: Sequence[str],
    ) -> dict[str, Rendered]:
        """Each recipient's rendering, in the locale and zone of their contact (the
        default locale and UTC without one): one rendering per distinct (locale, zone),
        not per recipient. Any failure is a 422 for the whole create."""
        found = await contacts.contact_of(conn, recipients)
        audiences: dict[str, Audience] = {}
        for user_id in recipients:
            contact = found.get(user_id)
            audiences[user_id] = (Audience(contact.locale, contact.timezone) if contact
                                  else Audience(None, None))
        rendered = await self._engine.render_many(
            template, variables, list(dict.fromkeys(audiences.values())))
        return {user_id: rendered[audience] for user_id, audience in audiences.items()}
