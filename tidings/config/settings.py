"""The one typed settings object, read from the environment (and `.env`) once at start-up.

Every environment variable of the public contract is a field here; nothing else in the
package reads `os.environ`. The fields are declared by area, each group with its own
checks, in the modules beside this one; `Settings` is all of them.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from tidings.config.auth import MIN_SECRET_BYTES as MIN_SECRET_BYTES
from tidings.config.auth import AuthSettings
from tidings.config.database import DEFAULT_SQLITE_URL as DEFAULT_SQLITE_URL
from tidings.config.database import DatabaseSettings
from tidings.config.delivery import DeliverySettings
from tidings.config.email import EmailSettings
from tidings.config.encryption import EncryptionSettings
from tidings.config.limits import LimitSettings
from tidings.config.providers import ProviderSettings
from tidings.config.push import PushSettings
from tidings.config.realtime import RealtimeSettings
from tidings.config.redis import RedisSettings
from tidings.config.server import LOG_LEVELS as LOG_LEVELS
from tidings.config.server import ServerSettings
from tidings.config.tls import TLSSettings
from tidings.config.values import check_rate as check_rate

DEV_SECRET_FILE = ".tidings-secret"
DEV_SIGNING_SECRET_FILE = ".tidings-signing-secret"


# pydantic takes the groups' fields and checks from the last base to the first, so the
# whole-model checks run as they always have: Redis, channel rules, TLS, encryption keys,
# then the database URL (when several are wrong, the same one is reported).
class Settings(
    DatabaseSettings,
    EncryptionSettings,
    TLSSettings,
    LimitSettings,
    RealtimeSettings,
    DeliverySettings,
    ProviderSettings,
    PushSettings,
    EmailSettings,
    AuthSettings,
    ServerSettings,
    RedisSettings,
):
    """Every setting of the service: the groups above, one typed object."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)


def describe(error: ValidationError) -> str:
    """A settings error as an operator reads it: one line per variable, named as set."""
    lines = []
    for item in error.errors():
        loc = [_variable(part) for part in item["loc"]]
        where = ".".join(loc)
        message = str(item["msg"]).removeprefix("Value error, ")
        # Messages that already name their variable (model-wide checks) stand alone.
        lines.append(f"{where}: {message}" if not message.startswith(where) else message)
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _variable(part: object) -> str:
    """A field's environment variable name (`jwt_secret` -> `JWT_SECRET`)."""
    field = Settings.model_fields.get(str(part))
    if field is not None and isinstance(field.validation_alias, str):
        return field.validation_alias
    return str(part)


def load_settings(**overrides: object) -> Settings:
    """Build the settings; with neither JWT_SECRET nor JWT_PUBLIC_KEY, use (and create) a
    random development secret in `.tidings-secret`, so `tidings token` and `tidings serve`
    agree without any set-up and no guessable default secret ever exists."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if not settings.jwt_secret and not settings.jwt_public_key:
        # Built again rather than assigned, so the file's secret is validated too.
        overrides = {**overrides, "jwt_secret": _dev_secret(Path(DEV_SECRET_FILE))}
        settings = Settings(**overrides)  # type: ignore[arg-type]
    if not settings.signing_secret:
        settings.signing_secret = settings.jwt_secret or _dev_secret(
            Path(DEV_SIGNING_SECRET_FILE))
    return settings


def _dev_secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(32)
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret
