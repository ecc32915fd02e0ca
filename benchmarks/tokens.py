"""HS256 tokens minted by the tool itself, so no server-side helper is needed."""

from __future__ import annotations

import os
import time

import jwt

# 32 bytes at least: `tidings serve` refuses shorter HS256 secrets.
DEFAULT_SECRET = "bench-secret-for-loopback-load-tests-only"
TOKEN_TTL_S = 6 * 3600  # longer than any scenario, so no token expires mid-run


def default_secret() -> str:
    return os.environ.get("JWT_SECRET") or DEFAULT_SECRET


def user_token(secret: str, user_id: str) -> str:
    return jwt.encode(
        {"sub": user_id, "exp": int(time.time()) + TOKEN_TTL_S}, secret, algorithm="HS256"
    )


def service_token(secret: str, subject: str = "bench-sender") -> str:
    claims = {"sub": subject, "roles": ["service"], "exp": int(time.time()) + TOKEN_TTL_S}
    return jwt.encode(claims, secret, algorithm="HS256")


def user_ids(count: int, prefix: str = "u") -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]
