"""The authentication and signing part of the settings: what verifies the producers' and
clients' tokens (JWT_*), and what signs unsubscribe links (SIGNING_SECRET). A group of
fields that `Settings` inherits (as `redis.py`)."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings

from tidings.config.values import PublicKey, load_public_key

# RFC 7518 (3.2): an HS256 key must be at least as long as the hash, 256 bits.
MIN_SECRET_BYTES = 32


class AuthSettings(BaseSettings):
    """ALLOW_SHORT_JWT_SECRET, JWT_SECRET, JWT_PUBLIC_KEY, JWT_ISSUER, JWT_AUDIENCE and
    SIGNING_SECRET."""

    # Declared before JWT_SECRET: its validator reads this flag.
    allow_short_jwt_secret: bool = Field(False, validation_alias="ALLOW_SHORT_JWT_SECRET")
    jwt_secret: str = Field("", validation_alias="JWT_SECRET")
    jwt_public_key: str = Field("", validation_alias="JWT_PUBLIC_KEY")
    jwt_issuer: str = Field("", validation_alias="JWT_ISSUER")
    jwt_audience: str = Field("", validation_alias="JWT_AUDIENCE")
    # Signs one-click unsubscribe links (HMAC-SHA256). Empty: JWT_SECRET; with neither (a
    # JWT_PUBLIC_KEY deployment), `load_settings` keeps a random one in
    # `.tidings-signing-secret`. Changing it invalidates the links in emails already sent.
    signing_secret: str = Field("", validation_alias="SIGNING_SECRET")

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: str, info: ValidationInfo) -> str:
        if value and len(value.encode()) < MIN_SECRET_BYTES:
            if not info.data.get("allow_short_jwt_secret"):
                raise ValueError(
                    f"is {len(value.encode())} bytes long; HS256 needs at least "
                    f"{MIN_SECRET_BYTES} (e.g. `openssl rand -base64 32`), or set "
                    "ALLOW_SHORT_JWT_SECRET=true for local development"
                )
        return value

    @field_validator("jwt_public_key")
    @classmethod
    def _parseable_key(cls, value: str) -> str:
        if value:
            load_public_key(value)
        return value

    def verification_key(self) -> tuple[str | PublicKey, list[str]]:
        """The key and the one algorithm that verify tokens: a PEM public key wins over a
        secret. The algorithm follows the key's type, so a token can never pick one."""
        if self.jwt_public_key:
            return load_public_key(self.jwt_public_key)
        return self.jwt_secret, ["HS256"]
