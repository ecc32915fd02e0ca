"""The one typed settings object, read from the environment (and `.env`) once at start-up.

Every environment variable of the public contract is a field here; nothing else in the
package reads `os.environ`.
"""

from __future__ import annotations

import secrets
import ssl
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode, SettingsConfigDict

from tidings.config.redis import RedisSettings
from tidings.config.values import (
    ChannelRuleSpec,
    PublicKey,
    check_rate,
    decode_rules_json,
    load_public_key,
    normalize_database_url,
    read_rules_file,
)
from tidings.crypto.keyring import KeyRing, parse_keys

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./tidings.db"
DEV_SECRET_FILE = ".tidings-secret"
# RFC 7518 (3.2): an HS256 key must be at least as long as the hash, 256 bits.
MIN_SECRET_BYTES = 32
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

DEV_SIGNING_SECRET_FILE = ".tidings-signing-secret"


class Settings(RedisSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # Where `tidings serve` listens. "localhost" binds every loopback address the name
    # resolves to (IPv4 and IPv6), so browsers that try ::1 first still connect.
    host: str = Field("localhost", validation_alias="HOST")
    port: int = Field(3001, ge=0, le=65535, validation_alias="WEBSOCKET_PORT")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="WEBSOCKET_CORS_ORIGIN"
    )

    database_url: str = Field("", validation_alias="DATABASE_URL")
    db_host: str = Field("", validation_alias="DB_HOST")
    db_port: int = Field(5432, validation_alias="DB_PORT")
    db_name: str = Field("tidings", validation_alias="DB_NAME")
    db_user: str = Field("postgres", validation_alias="DB_USER")
    db_password: str = Field("", validation_alias="DB_PASSWORD")
    db_pool_size: int = Field(10, ge=1, validation_alias="DB_POOL_SIZE")

    # The REDIS_* fields: `settings_redis.py`.

    # Declared before JWT_SECRET: its validator reads this flag.
    allow_short_jwt_secret: bool = Field(False, validation_alias="ALLOW_SHORT_JWT_SECRET")
    jwt_secret: str = Field("", validation_alias="JWT_SECRET")
    jwt_public_key: str = Field("", validation_alias="JWT_PUBLIC_KEY")
    jwt_issuer: str = Field("", validation_alias="JWT_ISSUER")
    jwt_audience: str = Field("", validation_alias="JWT_AUDIENCE")

    smtp_host: str = Field("", validation_alias="SMTP_HOST")
    smtp_port: int = Field(587, validation_alias="SMTP_PORT")
    smtp_username: str = Field("", validation_alias="SMTP_USERNAME")
    smtp_password: str = Field("", validation_alias="SMTP_PASSWORD")
    smtp_starttls: bool = Field(True, validation_alias="SMTP_STARTTLS")
    smtp_tls: bool = Field(False, validation_alias="SMTP_TLS")  # implicit TLS (port 465)
    email_from: str = Field("tidings@localhost", validation_alias="EMAIL_FROM")
    email_service_url: str = Field("", validation_alias="EMAIL_SERVICE_URL")
    email_service_api_key: str = Field("", validation_alias="EMAIL_SERVICE_API_KEY")
    push_service_url: str = Field("", validation_alias="PUSH_SERVICE_URL")
    push_service_api_key: str = Field("", validation_alias="PUSH_SERVICE_API_KEY")

    fcm_credentials_file: str = Field("", validation_alias="FCM_CREDENTIALS_FILE")
    fcm_endpoint: str = Field("https://fcm.googleapis.com", validation_alias="FCM_ENDPOINT")
    apns_key_file: str = Field("", validation_alias="APNS_KEY_FILE")
    apns_key_id: str = Field("", validation_alias="APNS_KEY_ID")
    apns_team_id: str = Field("", validation_alias="APNS_TEAM_ID")
    apns_topic: str = Field("", validation_alias="APNS_TOPIC")
    apns_endpoint: str = Field("https://api.push.apple.com", validation_alias="APNS_ENDPOINT")
    vapid_private_key: str = Field("", validation_alias="VAPID_PRIVATE_KEY")
    vapid_subject: str = Field("", validation_alias="VAPID_SUBJECT")
    webpush_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="WEBPUSH_ALLOWED_HOSTS"
    )
    public_url: str = Field("http://localhost:3001", validation_alias="PUBLIC_URL")
    workers_in_serve: bool = Field(True, validation_alias="WORKERS_IN_SERVE")
    allow_private_targets: bool = Field(False, validation_alias="ALLOW_PRIVATE_TARGETS")
    # Enabled push devices a user may have: registering one more disables the least
    # recently registered, and a push goes to at most this many (docs/PUSH.md).
    max_devices_per_user: int = Field(20, ge=1, le=1000, validation_alias="MAX_DEVICES_PER_USER")

    max_retry_attempts: int = Field(4, ge=0, validation_alias="MAX_RETRY_ATTEMPTS")
    retry_delays_ms: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [1000, 5000, 30000, 300000], validation_alias="RETRY_DELAYS"
    )
    notification_batch_size: int = Field(
        100, ge=1, le=10000, validation_alias="NOTIFICATION_BATCH_SIZE"
    )
    throttle_per_hour: int = Field(20, ge=0, validation_alias="THROTTLE_PER_HOUR")
    delivery_lease_seconds: float = Field(30, gt=0, validation_alias="DELIVERY_LEASE_SECONDS")
    # Notifications older than this many days are dropped (whole monthly partitions on
    # PostgreSQL); 0 keeps them forever.
    retention_days: int = Field(0, ge=0, validation_alias="RETENTION_DAYS")

    # Not in the contract: operational knobs with safe defaults.
    ws_per_message_deflate: bool = Field(False, validation_alias="WS_PER_MESSAGE_DEFLATE")
    max_body_bytes: int = Field(1_048_576, ge=1024, validation_alias="MAX_BODY_BYTES")
    max_event_bytes: int = Field(65_536, ge=1024, validation_alias="MAX_EVENT_BYTES")
    # Seconds a Socket.IO session may stay open without connecting namespace `/` (with its
    # token): a client that opens sessions and never authenticates does not keep them.
    connect_timeout_s: float = Field(5.0, gt=0, validation_alias="CONNECT_TIMEOUT")
    max_poll_packets: int = Field(256, ge=1, validation_alias="MAX_POLL_PACKETS")
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-Host/-Proto the
    # Socket.IO same-origin check believes; from anyone else those headers are ignored.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="TRUSTED_PROXIES"
    )
    scheduler_interval_s: float = Field(1.0, gt=0, validation_alias="SCHEDULER_INTERVAL")
    log_level: str = Field("info", validation_alias="LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", validation_alias="LOG_FORMAT")
    # HTTPS and WSS on the same port when both are set (PEM files; the certificate file
    # may hold the whole chain).
    tls_cert_file: str = Field("", validation_alias="TLS_CERT_FILE")
    tls_key_file: str = Field("", validation_alias="TLS_KEY_FILE")
    # Encryption at rest of the parts producers mark sensitive: `id:base64key` entries
    # (comma- or line-separated), the first one writes, all read. Or a file holding them.
    encryption_keys: SecretStr = Field(SecretStr(""), validation_alias="ENCRYPTION_KEYS")
    encryption_keys_file: str = Field("", validation_alias="ENCRYPTION_KEYS_FILE")
    _keyring: KeyRing | None = PrivateAttr(None)
    # When set, `GET /metrics` wants `Authorization: Bearer <METRICS_TOKEN>`.
    metrics_token: str = Field("", validation_alias="METRICS_TOKEN")
    # Which Socket.IO server implementation serves `/socket.io/`: the project's own lean
    # one (`tidings/realtime/lean/`: half the memory per connection, faster connects), or
    # the python-socketio reference. Both pass the same contract tests.
    realtime_transport: Literal["lean", "python-socketio"] = Field(
        "lean", validation_alias="REALTIME_TRANSPORT"
    )
    # Signs one-click unsubscribe links (HMAC-SHA256). Empty: JWT_SECRET; with neither (a
    # JWT_PUBLIC_KEY deployment), `load_settings` keeps a random one in
    # `.tidings-signing-secret`. Changing it invalidates the links in emails already sent.
    signing_secret: str = Field("", validation_alias="SIGNING_SECRET")

    # Limits (docs/CONFIGURATION.md, "Limits"). A rate is "N/second|minute|hour|day" ("0" or
    # empty: off); the create rate counts notifications (each recipient's copy), and its
    # default stops a runaway producer while one create to the most `user_ids` allowed
    # (10,000) still fits in a window.
    rate_limit_creates: str = Field("10000/second", validation_alias="RATE_LIMIT_CREATES")
    rate_limit_socket_events: str = Field(
        "50/second", validation_alias="RATE_LIMIT_SOCKET_EVENTS"
    )
    max_sockets_per_user: int = Field(50, ge=0, validation_alias="MAX_SOCKETS_PER_USER")
    # Who may join which channel: JSON in CHANNEL_RULES, or a JSON file named by
    # CHANNEL_RULES_FILE (one or the other). None: every valid name is public.
    channel_rules: Annotated[list[ChannelRuleSpec] | None, NoDecode] = Field(
        None, validation_alias="CHANNEL_RULES"
    )
    channel_rules_file: str = Field("", validation_alias="CHANNEL_RULES_FILE")

    @field_validator("cors_origins", "webpush_allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("retry_delays_ms", mode="before")
    @classmethod
    def _split_delays(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("rate_limit_creates", "rate_limit_socket_events")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        return check_rate(value)

    @field_validator("channel_rules", mode="before")
    @classmethod
    def _decode_rules(cls, value: object) -> object:
        if isinstance(value, str):
            return decode_rules_json(value, "CHANNEL_RULES") if value.strip() else None
        return value

    @model_validator(mode="after")
    def _load_rules_file(self) -> Settings:
        if self.channel_rules_file:
            if self.channel_rules is not None:
                raise ValueError("set CHANNEL_RULES or CHANNEL_RULES_FILE, not both")
            self.channel_rules = read_rules_file(self.channel_rules_file)
        if not self.channel_rules:
            self.channel_rules = None  # an empty list configures nothing
        return self

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

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.lower()

    @model_validator(mode="after")
    def _tls_pair_loads(self) -> Settings:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("TLS_CERT_FILE and TLS_KEY_FILE: set both, or neither")
        if self.tls_cert_file:
            try:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(self.tls_cert_file, self.tls_key_file)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"TLS_CERT_FILE and TLS_KEY_FILE: cannot load the pair ({exc})"
                ) from exc
        return self

    @model_validator(mode="after")
    def _keys_parse(self) -> Settings:
        text = self.encryption_keys.get_secret_value()
        if text.strip() and self.encryption_keys_file:
            raise ValueError("ENCRYPTION_KEYS and ENCRYPTION_KEYS_FILE: set one, not both")
        setting = "ENCRYPTION_KEYS"
        if self.encryption_keys_file:
            setting = "ENCRYPTION_KEYS_FILE"
            try:
                text = Path(self.encryption_keys_file).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"ENCRYPTION_KEYS_FILE: cannot read the file ({exc})") from exc
        self._keyring = parse_keys(text, setting)
        if self.encryption_keys_file and self._keyring is None:
            raise ValueError("ENCRYPTION_KEYS_FILE: the file holds no key")
        return self

    @model_validator(mode="after")
    def _build_database_url(self) -> Settings:
        if not self.database_url:
            if self.db_host:
                auth = self.db_user + (f":{self.db_password}" if self.db_password else "")
                self.database_url = (
                    f"postgresql+asyncpg://{auth}@{self.db_host}:{self.db_port}/{self.db_name}"
                )
            else:
                self.database_url = DEFAULT_SQLITE_URL
        self.database_url = normalize_database_url(self.database_url)
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file)

    def keyring(self) -> KeyRing | None:
        """The encryption keys (checked at start-up); None when none are configured."""
        return self._keyring

    def verification_key(self) -> tuple[str | PublicKey, list[str]]:
        """The key and the one algorithm that verify tokens: a PEM public key wins over a
        secret. The algorithm follows the key's type, so a token can never pick one."""
        if self.jwt_public_key:
            return load_public_key(self.jwt_public_key)
        return self.jwt_secret, ["HS256"]


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
