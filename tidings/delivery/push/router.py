"""Push delivery as the queue sees it: one `PushSender` that routes each device to its
platform's provider (FCM, APNs, Web Push), or to the internal HTTP push service for the
platforms that have no provider of their own configured.

`build_push_senders` is called once at start-up (it reads the key files) with the shared
async HTTP client; the router it returns is closed at shut-down.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tidings.config.settings import Settings
from tidings.delivery.messages import Device, Platform, Push
from tidings.delivery.outcome import Attempt, Outcome
from tidings.delivery.push.apns import ApnsSender
from tidings.delivery.push.base import PushSender, failed, finish
from tidings.delivery.push.fcm import FcmSender
from tidings.delivery.push.http import HttpPushSender
from tidings.delivery.push.webpush import WebPushSender, load_vapid_key, vapid_public_key

__all__ = ["ConfigError", "PushRouter", "PushSender", "build_push_senders", "public_vapid_key"]


class ConfigError(ValueError):
    """A push provider's settings cannot work; the message names the variable."""


class PushRouter:
    """A `PushSender` that hands each device to the sender for its platform, else to the
    fallback; with neither, the attempt is PERMANENT ("no provider configured for ...")."""

    def __init__(
        self, senders: Mapping[Platform, PushSender], fallback: PushSender | None = None
    ) -> None:
        self._senders = dict(senders)
        self._fallback = fallback

    def any_configured(self) -> bool:
        """Whether any push provider at all is configured."""
        return bool(self._senders) or self._fallback is not None

    def configured(self, platform: Platform) -> bool:
        """Whether devices of `platform` have anywhere to go (for skipping, not sending)."""
        return platform in self._senders or self._fallback is not None

    async def send(self, device: Device, push: Push) -> Attempt:
        sender = self._senders.get(device.platform, self._fallback)
        if sender is None:
            attempt = failed(
                Outcome.PERMANENT, f"no provider configured for {device.platform.value}"
            )
            return finish(attempt, device, time.perf_counter())
        return await sender.send(device, push)

    async def close(self) -> None:
        owned = [*self._senders.values(), *([self._fallback] if self._fallback else [])]
        for sender in {id(sender): sender for sender in owned}.values():
            await sender.close()


def build_push_senders(
    settings: Settings,
    http_client: httpx.AsyncClient,
    *,
    apns_verify: ssl.SSLContext | str | bool = True,
) -> PushRouter:
    """The router for the providers the settings configure. A half-configured provider
    (a key file but no topic, an unreadable or malformed key) raises `ConfigError` naming
    the setting at start-up, rather than failing every delivery later."""
    senders: dict[Platform, PushSender] = {}
    if settings.fcm_credentials_file:
        senders[Platform.FCM] = _fcm(settings, http_client)
    if settings.vapid_private_key:
        senders[Platform.WEBPUSH] = _webpush(settings, http_client)
    # APNs last: it opens a client of its own, which a later start-up error would leak.
    if settings.apns_key_file:
        senders[Platform.APNS] = _apns(settings, apns_verify)
    fallback = None
    if settings.push_service_url:
        fallback = HttpPushSender(
            settings.push_service_url, settings.push_service_api_key, http_client
        )
    return PushRouter(senders, fallback)


def _fcm(settings: Settings, http_client: httpx.AsyncClient) -> FcmSender:
    try:
        return FcmSender.from_file(
            settings.fcm_credentials_file, http_client, settings.fcm_endpoint
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"FCM_CREDENTIALS_FILE: {exc}") from exc


def _webpush(settings: Settings, http_client: httpx.AsyncClient) -> WebPushSender:
    try:
        key = load_vapid_key(settings.vapid_private_key)
    except ValueError as exc:
        raise ConfigError(f"VAPID_PRIVATE_KEY: {exc}") from exc
    try:
        return WebPushSender(
            key,
            settings.vapid_subject,
            http_client,
            allowed_hosts=settings.webpush_allowed_hosts,
            allow_private_targets=settings.allow_private_targets,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _apns(settings: Settings, verify: ssl.SSLContext | str | bool) -> ApnsSender:
    ids = {
        "APNS_KEY_ID": settings.apns_key_id,
        "APNS_TEAM_ID": settings.apns_team_id,
        "APNS_TOPIC": settings.apns_topic,
    }
    missing = [name for name, value in ids.items() if not value]
    if missing:
        raise ConfigError(f"APNS_KEY_FILE is set but {', '.join(missing)} is not")
    try:
        return ApnsSender(
            Path(settings.apns_key_file).read_text(),
            settings.apns_key_id,
            settings.apns_team_id,
            settings.apns_topic,
            settings.apns_endpoint,
            verify=verify,
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"APNS_KEY_FILE: {exc}") from exc


def public_vapid_key(settings: Settings) -> str | None:
    """For `GET /api/push/vapid-public-key`: the VAPID public key as browsers take it
    (base64url, uncompressed point), or None when Web Push is not configured."""
    if not settings.vapid_private_key:
        return None
    return vapid_public_key(load_vapid_key(settings.vapid_private_key))
