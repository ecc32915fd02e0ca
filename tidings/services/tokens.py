"""JWT verification (every HTTP request and socket) and minting (`tidings token`)."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import jwt

from tidings.config.settings import Settings
from tidings.domain.errors import AuthenticationFailed
from tidings.domain.model import Principal
from tidings.domain.text import is_storable

LEEWAY_S = 30
# Later than any real token's `exp` (year 2255): where a socket's close timer is capped.
MAX_EXPIRY = 9_000_000_000
# Verified tokens remembered (a producer sends the same token with every request, and a
# reconnect storm presents each token again): a signature check is ~30 us of CPU.
CACHE_SIZE = 20_000
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class TokenService:
    def __init__(self, settings: Settings) -> None:
        """Raises `ValueError` naming JWT_PUBLIC_KEY if the key cannot be used, so a bad
        key stops the start-up instead of failing every request."""
        self._key, self._algorithms = settings.verification_key()
        self._signing_secret = settings.jwt_secret
        self._issuer = settings.jwt_issuer or None
        self._audience = settings.jwt_audience or None
        # token -> (principal, exp). Only `exp` can turn a once-valid token invalid (nbf
        # and iat only ever become more valid), so a hit re-checks exactly that.
        self._verified: OrderedDict[str, tuple[Principal, int]] = OrderedDict()

    def verify(self, token: object) -> Principal:
        """The principal of a valid token; `AuthenticationFailed` for anything else.

        The reason stays in the log, not in the answer: callers learn only that it failed.
        """
        if not isinstance(token, str) or not token:
            raise AuthenticationFailed("Authentication failed")
        hit = self._verified.get(token)
        if hit is not None:
            principal, expires = hit
            if time.time() <= expires + LEEWAY_S:
                return principal
            del self._verified[token]
        if not _canonical_signature(token):
            raise AuthenticationFailed("Authentication failed")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY_S,
                options={"require": ["sub", "exp"], "verify_aud": self._audience is not None},
            )
        # PyJWTError, not only InvalidTokenError: a key the token's algorithm cannot use
        # raises InvalidKeyError, and that too is the token's problem, never a 500.
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise AuthenticationFailed("Authentication failed") from exc
        sub = claims.get("sub")
        roles = claims.get("roles", [])
        # The subject is a user id the database stores and searches: a NUL or a lone
        # surrogate in it could never match a row, and would fail the query instead.
        if not isinstance(sub, str) or not sub or len(sub) > 255 or not is_storable(sub):
            raise AuthenticationFailed("Authentication failed")
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise AuthenticationFailed("Authentication failed")
        # int, not float: PyJWT accepts any integer `exp`, and 10**400 has no float.
        expires = int(claims["exp"])
        principal = Principal(user_id=sub, roles=frozenset(roles),
                              expires_at=float(min(expires, MAX_EXPIRY)) + LEEWAY_S)
        self._verified[token] = (principal, expires)
        if len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def mint(self, sub: str, roles: Iterable[str] = (), ttl_s: int = 3600) -> str:
        """A development token signed with JWT_SECRET (HS256)."""
        if not self._signing_secret:
            raise AuthenticationFailed(
                "minting needs JWT_SECRET; with JWT_PUBLIC_KEY, tokens come from your issuer"
            )
        now = int(time.time())
        claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl_s}
        roles = list(roles)
        if roles:
            claims["roles"] = roles
        if self._issuer:
            claims["iss"] = self._issuer
        if self._audience:
            claims["aud"] = self._audience
        return jwt.encode(claims, self._signing_secret, algorithm="HS256")


def _canonical_signature(token: str) -> bool:
    """Whether the signature part of a compact JWS is spelled the one way RFC 7515 spells
    it (base64url, no padding, unused bits zero). PyJWT also takes a padded signature, so
    one token would have several spellings; the header and claims need no check, the
    signature covers their text."""
    signature = token.rpartition(".")[2]
    if not _B64URL.fullmatch(signature):
        return False
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except binascii.Error:
        return False
    spelled = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return hmac.compare_digest(spelled, signature)
