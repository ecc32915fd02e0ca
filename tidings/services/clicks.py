"""Tracked links (DESIGN section 12): `{PUBLIC_URL}/c/{token}` redirects to one link a
notification stores (its `url`, or one of its `actions`), records the first click as
`clicked_at`, and raises the `notification.clicked` webhook event.

A token is `base64url(payload) "." base64url(tag)` in the one canonical spelling, as the
unsubscribe tokens are: the payload the JSON array `[notification_id, which]` (0 its
`url`, 1-3 its actions), the tag the first 16 bytes of its HMAC-SHA256 under a key of its
own purpose derived from SIGNING_SECRET (JWT_SECRET when unset). The redirect goes only to
the URL stored with the notification, never to one the request names, so a link cannot
be turned into an open redirect.
"""

from __future__ import annotations

import json
import logging

from tidings.config.settings import Settings
from tidings.crypto.cipher import FieldCipher
from tidings.domain.errors import NotFound
from tidings.domain.ids import is_uuid
from tidings.domain.model import isoformat, utcnow
from tidings.domain.notification import Notification
from tidings.domain.webhook import WebhookEventType
from tidings.services.queue_signal import QueueSignal
from tidings.services.signed_links import BadToken, open_token, purpose_key, sign
from tidings.store import inbox_states as store
from tidings.store.database import Database
from tidings.store.webhooks import enqueue_webhook_events

log = logging.getLogger(__name__)

MAX_ACTIONS = 3
_PURPOSE = b"tidings click v1"
INVALID = "this link is not valid"


def click_key(settings: Settings) -> bytes:
    """The HMAC key of click tokens (their own, so no other link's token opens one)."""
    return purpose_key(settings, _PURPOSE)


def mint_click(key: bytes, notification_id: str, which: int) -> str:
    return sign(key, json.dumps([notification_id, which], separators=(",", ":")).encode())


def read_click(key: bytes, token: str) -> tuple[str, int]:
    """(notification id, which link) of a token this key signed; `BadToken` otherwise.
    The tag is checked before the payload is parsed."""
    try:
        fields = json.loads(open_token(key, token, INVALID))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken(INVALID) from exc
    if not (isinstance(fields, list) and len(fields) == 2 and isinstance(fields[0], str)
            and is_uuid(fields[0]) and type(fields[1]) is int
            and 0 <= fields[1] <= MAX_ACTIONS):
        raise BadToken(INVALID)
    return fields[0], fields[1]


def click_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/c/{token}"


def link_of(notification: Notification, which: int) -> str | None:
    """The stored URL a link names: 0 the notification's `url`, N its N-th action's."""
    if which == 0:
        return notification.url
    actions = notification.actions or []
    url = actions[which - 1].get("url") if which <= len(actions) else None
    return url if isinstance(url, str) else None


class ClickService:
    def __init__(self, db: Database, settings: Settings, signal: QueueSignal,
                 cipher: FieldCipher | None = None) -> None:
        self._db = db
        self._key = click_key(settings)
        self._signal = signal  # raised when the click wrote webhook events
        self._cipher = cipher

    async def follow(self, token: str) -> str:
        """Where the token leads; the first click is recorded (`clicked_at`, and the
        `notification.clicked` event in the same transaction). `BadToken` if forged or
        naming no stored link; NotFound once the notification is gone."""
        notification_id, which = read_click(self._key, token)
        async with self._db.begin() as conn:
            now = utcnow()
            found, first = await store.record_click(conn, notification_id, now,
                                                    cipher=self._cipher)
            if found is None:
                raise NotFound("this notification no longer exists")
            url = link_of(found, which)
            if url is None:
                raise BadToken(INVALID)
            raised = 0
            if first:
                raised = await enqueue_webhook_events(
                    conn, WebhookEventType.NOTIFICATION_CLICKED, [(found.id, found.user_id, {
                        "notification_id": found.id, "user_id": found.user_id,
                        "clicked_at": isoformat(now), "link": which, "url": url})], now)
        if raised:
            self._signal.queued()
        return url
