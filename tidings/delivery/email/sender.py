"""The one interface the delivery queue sees for email, and the choice of transport.

Two real implementations: `SmtpSender` (a relay) and `HttpEmailSender` (an internal HTTP
service). When both are configured, both are used: in EMAIL_PROVIDERS' order (SMTP first
by default), the next one taking over within the same attempt when one fails transiently
(`delivery/failover.py`).
"""

from __future__ import annotations

import ssl
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from tidings.config.settings import Settings
from tidings.delivery.breaker import CircuitBreaker
from tidings.delivery.email.http import HttpEmailSender
from tidings.delivery.email.smtp import SmtpSender
from tidings.delivery.failover import Failover, Named
from tidings.delivery.messages import Email
from tidings.delivery.outcome import Attempt


class EmailSender(Protocol):
    async def send(self, email: Email) -> Attempt:
        """Hand one message to the provider. Never raises for a provider or network
        failure: the answer says sent, transient (retry) or permanent (dead letter)."""
        ...

    async def close(self) -> None:
        """Release what the sender holds (idle SMTP connections); idempotent."""
        ...


def build_email_sender(
    settings: Settings,
    http_client: httpx.AsyncClient,
    *,
    tls_context: ssl.SSLContext | None = None,
    timeout_s: float = 30.0,
) -> EmailSender | None:
    """The first provider of EMAIL_PROVIDERS' order, or None when email is not configured
    at all."""
    order = settings.email_order()
    if not order:
        return None
    return _provider(order[0], settings, http_client, tls_context, timeout_s)


def build_email_failover(
    settings: Settings,
    http_client: httpx.AsyncClient,
    *,
    tls_context: ssl.SSLContext | None = None,
    timeout_s: float = 30.0,
) -> Failover[Email] | None:
    """Every configured email provider in EMAIL_PROVIDERS' order (by default SMTP, then
    the HTTP service), each with its own circuit breaker; None when none is configured."""
    providers = [Named(name, _provider(name, settings, http_client, tls_context, timeout_s),
                       CircuitBreaker(settings.provider_breaker_failures,
                                      settings.provider_breaker_cooldown_s))
                 for name in settings.email_order()]
    return Failover(providers) if providers else None


def _provider(name: str, settings: Settings, http_client: httpx.AsyncClient,
              tls_context: ssl.SSLContext | None, timeout_s: float) -> EmailSender:
    if name == "smtp":
        return SmtpSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.email_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            implicit_tls=settings.smtp_tls,
            tls_context=tls_context,
            timeout_s=timeout_s,
            # Relays judge the EHLO name; the service's public name is the honest one.
            local_hostname=urlsplit(settings.public_url).hostname or None,
        )
    return HttpEmailSender(
        http_client,
        url=settings.email_service_url,
        sender=settings.email_from,
        api_key=settings.email_service_api_key,
        timeout_s=timeout_s,
    )
