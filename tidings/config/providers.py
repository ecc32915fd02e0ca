"""The SMS providers and the failover between providers of one medium: Twilio or an
internal HTTP SMS service, the order EMAIL_PROVIDERS and SMS_PROVIDERS name, and the
circuit breaker that pauses a failing provider (docs/DELIVERY.md). A group of fields that
`Settings` inherits (as `redis.py`)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode

from tidings.config.values import comma_list

EMAIL_PROVIDER_NAMES = ("smtp", "http")
SMS_PROVIDER_NAMES = ("twilio", "http")
TWILIO_ORIGIN = "https://api.twilio.com"
SLACK_ORIGIN = "https://slack.com"


class ProviderSettings(BaseSettings):
    """TWILIO_*, SMS_SERVICE_*, SLACK_*, EMAIL_PROVIDERS, SMS_PROVIDERS and
    PROVIDER_BREAKER_*."""

    twilio_account_sid: str = Field("", validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str = Field("", validation_alias="TWILIO_AUTH_TOKEN")
    twilio_from: str = Field("", validation_alias="TWILIO_FROM")
    # The origin (scheme://host:port) of the Messages API; tests point it at loopback.
    twilio_endpoint: str = Field(TWILIO_ORIGIN, validation_alias="TWILIO_ENDPOINT")
    # Chat: a Slack app's bot token (xoxb-...) for users' direct messages; the Web API's
    # origin (tests point it at loopback). Team feeds need no setting: each is a URL.
    slack_bot_token: str = Field("", validation_alias="SLACK_BOT_TOKEN")
    slack_endpoint: str = Field(SLACK_ORIGIN, validation_alias="SLACK_ENDPOINT")
    sms_service_url: str = Field("", validation_alias="SMS_SERVICE_URL")
    sms_service_api_key: str = Field("", validation_alias="SMS_SERVICE_API_KEY")
    # The order providers are tried in; empty: every configured one, in the names' order.
    email_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="EMAIL_PROVIDERS")
    sms_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="SMS_PROVIDERS")
    # A provider that failed transiently this many times in a row is skipped for the
    # cool-down, then tried again by one request (half-open). Per process.
    provider_breaker_failures: int = Field(5, ge=1, le=1000,
                                           validation_alias="PROVIDER_BREAKER_FAILURES")
    provider_breaker_cooldown_s: float = Field(
        30.0, gt=0, le=86_400, validation_alias="PROVIDER_BREAKER_COOLDOWN_SECONDS")

    @field_validator("email_providers", "sms_providers", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return comma_list(value)

    @model_validator(mode="after")
    def _providers_make_sense(self) -> ProviderSettings:
        twilio = {"TWILIO_ACCOUNT_SID": self.twilio_account_sid,
                  "TWILIO_AUTH_TOKEN": self.twilio_auth_token, "TWILIO_FROM": self.twilio_from}
        missing = [name for name, value in twilio.items() if not value]
        if 0 < len(missing) < len(twilio):
            raise ValueError(f"{missing[0]} is required when any of "
                             f"{', '.join(twilio)} is set")
        _origin("TWILIO_ENDPOINT", self.twilio_endpoint)
        _origin("SLACK_ENDPOINT", self.slack_endpoint)
        if self.sms_service_url:
            _url("SMS_SERVICE_URL", self.sms_service_url)
        _order("EMAIL_PROVIDERS", self.email_providers, EMAIL_PROVIDER_NAMES,
               self.email_configured())
        _order("SMS_PROVIDERS", self.sms_providers, SMS_PROVIDER_NAMES, self.sms_configured())
        return self

    def sms_configured(self) -> set[str]:
        configured = set()
        if self.twilio_account_sid:
            configured.add("twilio")
        if self.sms_service_url:
            configured.add("http")
        return configured

    def email_configured(self) -> set[str]:
        """Which email providers the email settings configure (read through `Settings`,
        which has them)."""
        configured = set()
        if getattr(self, "smtp_host", ""):
            configured.add("smtp")
        if getattr(self, "email_service_url", ""):
            configured.add("http")
        return configured

    def email_order(self) -> list[str]:
        return self.email_providers or [name for name in EMAIL_PROVIDER_NAMES
                                        if name in self.email_configured()]

    def sms_order(self) -> list[str]:
        return self.sms_providers or [name for name in SMS_PROVIDER_NAMES
                                      if name in self.sms_configured()]


def _order(setting: str, names: list[str], known: tuple[str, ...],
           configured: set[str]) -> None:
    for name in names:
        if name not in known:
            raise ValueError(f"{setting}: unknown provider {name!r} (known: "
                             f"{', '.join(known)})")
    for name in names:
        if name not in configured:
            raise ValueError(f"{setting}: provider {name!r} is named but not configured")
    if len(set(names)) != len(names):
        raise ValueError(f"{setting}: a provider is named twice")


def _url(setting: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{setting} must be an http(s) URL, such as "
                         "'https://sms.internal/send'")


def _origin(setting: str, value: str) -> None:
    _url(setting, value)
    if urlsplit(value).path not in ("", "/"):
        raise ValueError(f"{setting} is an origin (scheme://host:port), without a path")
