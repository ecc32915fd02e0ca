"""One-click unsubscribe (RFC 8058): signed links that turn email off for one (channel,
type) of one user, without a login.

A token is `base64url(payload) "." base64url(tag)`, each part in its one canonical
spelling (no padding, unused bits zero; any other spelling is refused like a forgery): the
payload is the JSON array `[user_id, channel, type]`, the tag the first 16 bytes of its
HMAC-SHA256 under a key derived from SIGNING_SECRET (JWT_SECRET when unset). Tokens do not
expire: a link in an old email must keep working, and what it can do is harmless and
idempotent. Rotating the secret invalidates every link already sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass

from tidings.config.settings import Settings
from tidings.domain.errors import TidingsError
from tidings.domain.fields import is_name
from tidings.domain.model import WILDCARD, utcnow
from tidings.domain.preference import Preference, PreferenceChange
from tidings.services.preferences import PreferenceService
from tidings.store import preferences as preference_store
from tidings.store.database import Database

log = logging.getLogger(__name__)

TAG_BYTES = 16  # 128 bits: forging one needs ~2^128 tries against the server
MAX_TOKEN_LENGTH = 2048
MAX_USER_ID_LENGTH = 255
# Keys the unsubscribe tag with a key of its own, so the secret it shares with JWT
# signing by default never signs two kinds of message with the same key.
_PURPOSE = b"tidings unsubscribe v1"


class BadToken(TidingsError):
    """Not a token this server signed (malformed, tampered, or signed with another
    secret). Not in the HTTP status table, so the edge answers 400."""

    code = "bad_token"


@dataclass(frozen=True, slots=True)
class UnsubscribeTarget:
    user_id: str
    channel: str
    notification_type: str


def signing_key(settings: Settings) -> bytes:
    """The HMAC key for unsubscribe tokens. Without any secret configured (settings built
    by hand, not through `load_settings`), a random one: links then last as long as the
    process, which is logged."""
    secret = settings.signing_secret or settings.jwt_secret
    if not secret:
        log.warning("neither SIGNING_SECRET nor JWT_SECRET is set: unsubscribe links "
                    "will stop working when this process ends")
        secret = secrets.token_urlsafe(32)
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """The bytes of `text` if it is their one canonical spelling (base64url, no padding,
    unused low bits zero), else ValueError: decoders accept up to 16 spellings of one
    value, and a link that was altered must not still work."""
    if not text or any(not (ch.isascii() and (ch.isalnum() or ch in "-_")) for ch in text):
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
    if not hmac.compare_digest(_b64(raw), text):
        raise ValueError("not the canonical spelling")
    return raw


def _tag(key: bytes, payload: str) -> bytes:
    return hmac.new(key, payload.encode(), hashlib.sha256).digest()[:TAG_BYTES]


def mint_token(key: bytes, user_id: str, channel: str, notification_type: str) -> str:
    """A compact, URL-safe token naming (user, channel, type)."""
    raw = json.dumps([user_id, channel, notification_type], separators=(",", ":"),
                     ensure_ascii=False)
    payload = _b64(raw.encode())
    return f"{payload}.{_b64(_tag(key, payload))}"


def read_token(key: bytes, token: str) -> UnsubscribeTarget:
    """What a token names; `BadToken` unless this key signed it. The tag is checked
    before the payload is parsed, so nothing an attacker wrote is ever decoded."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise BadToken("this unsubscribe link is not valid")
    payload, tag = token.split(".")
    try:
        given = _unb64(tag)
    except ValueError as exc:
        raise BadToken("this unsubscribe link is not valid") from exc
    if not hmac.compare_digest(given, _tag(key, payload)):
        raise BadToken("this unsubscribe link is not valid")
    try:
        fields = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken("this unsubscribe link is not valid") from exc
    if not (isinstance(fields, list) and len(fields) == 3
            and all(isinstance(part, str) for part in fields)):
        raise BadToken("this unsubscribe link is not valid")
    user_id, channel, type_ = fields
    if not (0 < len(user_id) <= MAX_USER_ID_LENGTH and _topic(channel) and _topic(type_)):
        raise BadToken("this unsubscribe link is not valid")
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
