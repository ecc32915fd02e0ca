"""The one interface the delivery queue sees for email, and the choice of transport.

Two real implementations: `SmtpSender` (a relay) and `HttpEmailSender` (an internal HTTP
service). When both are configured SMTP is used: it is the transport the contract names
first, and an operator who keeps an old EMAIL_SERVICE_URL around is warned at start-up.
"""

from __future__ import annotations

import logging
import ssl
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from tidings.config.settings import Settings
from tidings.delivery.email.http import HttpEmailSender
from tidings.delivery.email.smtp import SmtpSender
from tidings.delivery.messages import Email
from tidings.delivery.outcome import Attempt

log = logging.getLogger(__name__)


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
    """The configured sender, or None when email is not configured at all."""
    if settings.smtp_host:
        if settings.email_service_url:
            log.warning("SMTP_HOST and EMAIL_SERVICE_URL are both set; email goes over SMTP")
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
    if settings.email_service_url:
        return HttpEmailSender(
            http_client,
            url=settings.email_service_url,
            sender=settings.email_from,
            api_key=settings.email_service_api_key,
            timeout_s=timeout_s,
        )
    return None
