"""How some settings are spelled: the token verification key (JWT_PUBLIC_KEY), database
URLs, channel rules (CHANNEL_RULES, CHANNEL_RULES_FILE), rates (RATE_LIMIT_*) and
comma-separated lists, parsed and checked when the settings are read."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import limits
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
SUB_PLACEHOLDER = "{sub}"
RULE_PATTERN = re.compile(r"[A-Za-z0-9_.\-*]+")


class ChannelRuleSpec(BaseModel):
    """One channel rule as configured; `services/channel_rules.py` gives it its meaning
    (the first rule whose pattern matches decides)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(min_length=1, max_length=200)
    roles: list[Annotated[str, Field(min_length=1)]] | None = Field(None, min_length=1)
    allow: bool | None = None

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        if not RULE_PATTERN.fullmatch(value.replace(SUB_PLACEHOLDER, "x")):
            raise ValueError(
                "a pattern is made of name characters (letters, digits, _ . -), `*` for "
                f"any run of them, and {SUB_PLACEHOLDER} for the caller's own id"
            )
        return value

    @model_validator(mode="after")
    def _roles_or_allow(self) -> ChannelRuleSpec:
        if self.roles is not None and self.allow is not None:
            raise ValueError('a rule has "roles" or "allow", not both')
        return self


_RULES = TypeAdapter(list[ChannelRuleSpec])


def decode_rules_json(text: str, setting: str) -> list[ChannelRuleSpec]:
    """Channel rules from JSON text; a ValueError names `setting` and the faulty rule."""
    try:
        return _RULES.validate_json(text)
    except ValidationError as exc:
        problem = exc.errors()[0]
        place = [f"rule {part + 1}" if isinstance(part, int) else f'"{part}"'
                 for part in problem["loc"]]
        where = f" ({', '.join(place)})" if place else ""
        message = problem["msg"].removeprefix("Value error, ")
        raise ValueError(f"{setting}: {message}{where}") from None


def read_rules_file(path: str) -> list[ChannelRuleSpec]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"CHANNEL_RULES_FILE: cannot read {path}: {exc}") from None
    return decode_rules_json(text, f"CHANNEL_RULES_FILE ({path})")


def comma_list(value: object) -> object:
    """A comma-separated environment value as the list it names (blank items dropped);
    any other value as it is."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def check_rate(value: str) -> str:
    """A rate in the `limits` notation ("200/second", "3 per minute"); "0" or empty: off."""
    value = value.strip()
    if value in ("", "0"):
        return ""
    try:
        items = limits.parse_many(value)
    except ValueError:
        items = []
    if len(items) != 1:
        raise ValueError(f"{value!r} is not a rate like '200/second' (or '0' for no limit)")
    return value


def load_public_key(text: str) -> tuple[PublicKey, list[str]]:
    """JWT_PUBLIC_KEY parsed (`\\n` escapes accepted, as a one-line environment value has
    them): an RSA key verifies RS256, a P-256 key ES256. `ValueError` names the variable."""
    try:
        key = load_pem_public_key(text.replace("\\n", "\n").strip().encode())
    except (ValueError, TypeError) as exc:
        raise ValueError(
            "JWT_PUBLIC_KEY is not a PEM public key (-----BEGIN PUBLIC KEY-----...)"
        ) from exc
    if isinstance(key, rsa.RSAPublicKey):
        return key, ["RS256"]
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key, ["ES256"]
    raise ValueError("JWT_PUBLIC_KEY must be an RSA key (RS256) or a P-256 EC key (ES256)")


def normalize_database_url(url: str) -> str:
    """Accept the URLs operators paste (postgres://, postgresql://, sqlite:///) and pick the
    async driver, since the whole service runs on asyncio."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url
