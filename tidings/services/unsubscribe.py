"""One-click unsubscribe (RFC 8058): signed links that turn email off for one (channel,
type) of one user, without a login.

A token is signed as `signed_links.py` says; its payload is the JSON array `[user_id,
channel, type]`. Tokens do not expire: what one can do is harmless and idempotent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tidings.config.settings import Settings
from tidings.domain.fields import is_name
from tidings.domain.model import WILDCARD, utcnow
from tidings.domain.preference import Preference, PreferenceChange
from tidings.services.preferences import PreferenceService
from tidings.services.signed_links import BadToken, open_token, purpose_key, sign
from tidings.store import preferences as preference_store
from tidings.store.database import Database

MAX_USER_ID_LENGTH = 255
# Keys the unsubscribe tag with a key of its own, so the secret it shares with JWT
# signing by default never signs two kinds of message with the same key.
_PURPOSE = b"tidings unsubscribe v1"
_REFUSAL = "this unsubscribe link is not valid"


@dataclass(frozen=True, slots=True)
class UnsubscribeTarget:
    user_id: str
    channel: str
    notification_type: str


def signing_key(settings: Settings) -> bytes:
    """The HMAC key for unsubscribe tokens (`signed_links.purpose_key`)."""
    return purpose_key(settings, _PURPOSE)


def mint_token(key: bytes, user_id: str, channel: str, notification_type: str) -> str:
    """A compact, URL-safe token naming (user, channel, type)."""
    raw = json.dumps([user_id, channel, notification_type], separators=(",", ":"),
                     ensure_ascii=False)
    return sign(key, raw.encode())


def read_token(key: bytes, token: str) -> UnsubscribeTarget:
    """What a token names; `BadToken` unless this key signed it."""
    payload = open_token(key, token, _REFUSAL)
    try:
        fields = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken(_REFUSAL) from exc
    if not (isinstance(fields, list) and len(fields) == 3
            and all(isinstance(part, str) for part in fields)):
        raise BadToken(_REFUSAL)
    user_id, channel, type_ = fields
    if not (0 < len(user_id) <= MAX_USER_ID_LENGTH and _topic(channel) and _topic(type_)):
        raise BadToken(_REFUSAL)
    return UnsubscribeTarget(user_id, channel, type_)


def _topic(value: str) -> bool:
    return value == WILDCARD or is_name(value)


def unsubscribe_url(public_url: str, token: str) -> str:
    """`{PUBLIC_URL}/unsubscribe/{token}` (the token is URL-safe as it is)."""
    return f"{public_url.rstrip('/')}/unsubscribe/{token}"


def email_off(candidates: list[Preference], channel: str, type_: str) -> PreferenceChange:
    """The write that turns email off for exactly (channel, type): the other flags are
    those of the row that applied until now (the most specific, as `choose_media` picks);
    when that row is the exact one they are left alone, so a concurrent change of them
    still lands."""
    best = max(candidates, key=lambda row: row.specificity, default=None)
    if best is None or (best.channel, best.notification_type) == (channel, type_):
        return PreferenceChange(channel, type_, email_enabled=False)
    return PreferenceChange(channel, type_, email_enabled=False,
                            push_enabled=best.push_enabled,
                            in_app_enabled=best.in_app_enabled,
                            sms_enabled=best.sms_enabled, chat_enabled=best.chat_enabled)


class UnsubscribeService:
    def __init__(self, db: Database, settings: Settings,
                 preferences: PreferenceService) -> None:
        self._db = db
        # Told of each change, after its commit: the caches of preferences drop the user.
        self._preferences = preferences
        self._key = signing_key(settings)
        self._public_url = settings.public_url

    def token(self, user_id: str, channel: str, notification_type: str) -> str:
        return mint_token(self._key, user_id, channel, notification_type)

    def link(self, user_id: str, channel: str, notification_type: str) -> str:
        """The one-click link for an email to `user_id` about (channel, type)."""
        return unsubscribe_url(self._public_url, self.token(user_id, channel,
                                                            notification_type))

    def check(self, token: str) -> UnsubscribeTarget:
        """What the token would unsubscribe from, changing nothing; `BadToken` if forged."""
        return read_token(self._key, token)

    async def unsubscribe(self, token: str) -> UnsubscribeTarget:
        """Turn email off for the token's (user, channel, type); in-app and push keep what
        applied before. Idempotent; answers what it unsubscribed from."""
        target = read_token(self._key, token)
        channel, type_ = target.channel, target.notification_type
        try:
            async with self._db.begin() as conn:
                rows = (await preference_store.rows_of(conn, [target.user_id])).get(
                    target.user_id, [])
                change = email_off([row for row in rows if row.applies_to(channel, type_)],
                                   channel, type_)
                await preference_store.upsert_many(conn, target.user_id, [change], utcnow())
        finally:
            # Also after a failure: a commit whose answer was lost may have happened.
            self._preferences.changed(target.user_id)
        return target
