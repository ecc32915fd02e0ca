"""What every signed link of an email shares (one-click unsubscribe, the preference
centre): a token `base64url(payload) "." base64url(tag)`, each part in its one canonical
spelling (no padding, unused bits zero; any other spelling is refused like a forgery),
the tag the first 16 bytes of the payload's HMAC-SHA256 under a key of the link's own
purpose, derived from SIGNING_SECRET (JWT_SECRET when unset).

A key per purpose means a token of one kind of link never opens another kind, though both
come from one secret. Tokens do not expire: a link in an old email must keep working.
Rotating the secret invalidates every link already sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets

from tidings.config.settings import Settings
from tidings.domain.errors import TidingsError

log = logging.getLogger(__name__)

TAG_BYTES = 16  # 128 bits: forging one needs ~2^128 tries against the server
MAX_TOKEN_LENGTH = 2048


class BadToken(TidingsError):
    """Not a token this server signed (malformed, tampered, or signed with another
    secret). Not in the HTTP status table, so the edge answers 400."""

    code = "bad_token"


def purpose_key(settings: Settings, purpose: bytes) -> bytes:
    """The HMAC key of one kind of link. Without any secret configured (settings built by
    hand, not through `load_settings`), a random one: links then last as long as the
    process, which is logged."""
    secret = settings.signing_secret or settings.jwt_secret
    if not secret:
        log.warning("neither SIGNING_SECRET nor JWT_SECRET is set: links in emails "
                    "will stop working when this process ends")
        secret = secrets.token_urlsafe(32)
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    """The bytes of `text` if it is their one canonical spelling (base64url, no padding,
    unused low bits zero), else ValueError: decoders accept up to 16 spellings of one
    value, and a link that was altered must not still work."""
    if not text or any(not (ch.isascii() and (ch.isalnum() or ch in "-_")) for ch in text):
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
    if not hmac.compare_digest(b64(raw), text):
        raise ValueError("not the canonical spelling")
    return raw


def _tag(key: bytes, payload: str) -> bytes:
    return hmac.new(key, payload.encode(), hashlib.sha256).digest()[:TAG_BYTES]


def sign(key: bytes, payload: bytes) -> str:
    """A compact, URL-safe token carrying `payload`."""
    encoded = b64(payload)
    return f"{encoded}.{b64(_tag(key, encoded))}"


def open_token(key: bytes, token: str, refusal: str) -> bytes:
    """The payload of a token this key signed; `BadToken(refusal)` for anything else. The
    tag is checked before the payload is decoded, so nothing an attacker wrote is ever
    parsed."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise BadToken(refusal)
    payload, tag = token.split(".")
    try:
        given = unb64(tag)
    except ValueError as exc:
        raise BadToken(refusal) from exc
    if not hmac.compare_digest(given, _tag(key, payload)):
        raise BadToken(refusal)
    try:
        return unb64(payload)
    except ValueError as exc:
        raise BadToken(refusal) from exc
