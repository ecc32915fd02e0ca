"""The SMS providers in the order they are tried, built from the settings, and the rule
for what one message may carry."""

from __future__ import annotations

import httpx

from tidings.config.settings import Settings
from tidings.delivery.breaker import CircuitBreaker
from tidings.delivery.failover import Failover, Named, Provider
from tidings.delivery.messages import Sms
from tidings.delivery.sms.http import HttpSmsSender
from tidings.delivery.sms.twilio import TwilioSender

# Twilio takes at most 1,600 characters in one `Body` (sent as up to 10 segments).
MAX_SMS_CHARS = 1600
ELLIPSIS = "\u2026"


def sms_text(text: str) -> str:
    """At most `MAX_SMS_CHARS` code points; a longer text is cut and ends in an ellipsis
    (counted within the limit)."""
    if len(text) <= MAX_SMS_CHARS:
        return text
    return text[: MAX_SMS_CHARS - 1] + ELLIPSIS


def build_sms_failover(settings: Settings, http: httpx.AsyncClient, *,
                       timeout_s: float = 10.0) -> Failover[Sms] | None:
    """Every configured SMS provider in SMS_PROVIDERS' order (by default Twilio, then the
    HTTP service), each with its own circuit breaker; None when none is configured."""
    providers = [Named(name, _provider(name, settings, http, timeout_s),
                       CircuitBreaker(settings.provider_breaker_failures,
                                      settings.provider_breaker_cooldown_s))
                 for name in settings.sms_order()]
    return Failover(providers) if providers else None


def _provider(name: str, settings: Settings, http: httpx.AsyncClient,
              timeout_s: float) -> Provider[Sms]:
    if name == "twilio":
        return TwilioSender(http, account_sid=settings.twilio_account_sid,
                            auth_token=settings.twilio_auth_token,
                            sender=settings.twilio_from, endpoint=settings.twilio_endpoint,
                            timeout_s=timeout_s)
    return HttpSmsSender(http, url=settings.sms_service_url,
                         api_key=settings.sms_service_api_key, timeout_s=timeout_s)
