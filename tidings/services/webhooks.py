"""Webhook registrations: an admin registers a URL for some events and gets the signing
secret once; the list never shows secrets; deleting one skips its events still queued.

The URL is checked when registered (http(s), and unless private targets are allowed, a host
that is and resolves only to public addresses); the sender checks it again before each
POST, since a name can be re-pointed after registration.
"""

from __future__ import annotations

from dataclasses import dataclass

from tidings.delivery.targets import check_target_url
from tidings.delivery.webhooks.sender import generate_secret
from tidings.domain.cursor import decode_cursor, encode_cursor
from tidings.domain.errors import NotFound
from tidings.domain.ids import is_uuid, uuid7
from tidings.domain.model import Principal, utcnow
from tidings.domain.webhook import Webhook, WebhookDraft, check_events
from tidings.store import webhooks as store
from tidings.store.database import Database


@dataclass(frozen=True, slots=True)
class WebhookPage:
    items: list[Webhook]
    next_cursor: str | None


class WebhookService:
    def __init__(self, db: Database, *, allow_private: bool) -> None:
        self._db = db
        self._allow_private = allow_private

    async def register(self, principal: Principal, draft: WebhookDraft) -> Webhook:
        check_events(draft.events)
        await check_target_url(draft.url, allow_private=self._allow_private, field="url")
        hook = Webhook(
            id=uuid7(),
            url=draft.url,
            events=tuple(draft.events),
            secret=generate_secret(),
            created_by=principal.user_id,
            created_at=utcnow(),
        )
        async with self._db.begin() as conn:
            await store.insert(conn, hook)
        return hook

    async def page(self, limit: int, cursor: str | None) -> WebhookPage:
        before = decode_cursor(cursor) if cursor else None
        async with self._db.begin() as conn:
            items = await store.list_page(conn, limit, before)
        has_more = len(items) > limit
        items = items[:limit]
        next_cursor = encode_cursor(items[-1].position) if has_more else None
        return WebhookPage(items, next_cursor)

    async def delete(self, webhook_id: str) -> None:
        if not is_uuid(webhook_id):
            raise NotFound("webhook not found")
        async with self._db.begin() as conn:
            deleted = await store.delete(conn, webhook_id, utcnow())
        if not deleted:
            raise NotFound("webhook not found")
