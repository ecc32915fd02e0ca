"""Web Push: the payload encrypted for the browser's subscription (RFC 8291, aes128gcm,
through http_ece) and the request signed with the service's VAPID key (RFC 8292, through
py_vapid), POSTed with the shared async client.

A subscription's endpoint is a URL a user handed us, so before anything is sent its host is
checked by the rules registration used (`delivery.targets`): https only, equal to or under
an entry of `WEBPUSH_ALLOWED_HOSTS` when that is set, and never a private, loopback or
link-local address unless `ALLOW_PRIVATE_TARGETS` (tests) says so.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from tidings.delivery.messages import Device, Push
from tidings.delivery.outcome import Attempt, Outcome
from tidings.delivery.push.base import (
    compact_json,
    failed,
    finish,
    fit_push,
    http_failure,
    network_failure,
)
from tidings.delivery.targets import host_allowed, is_public_address

# 4096 bytes is the most a push service must accept; aes128gcm adds a 86-byte header (salt,
# record size, the sender's public key) and 17 bytes per record (tag and delimiter).
PLAINTEXT_LIMIT = 3990
RECORD_SIZE = 4096
VAPID_LIFETIME_S = 12 * 3600  # RFC 8292 allows at most 24 hours
_VAPID_RENEW_BEFORE_S = 3600
_RESOLVE_TIMEOUT_S = 5.0
_URGENCY = {"critical": "high", "high": "high", "low": "low"}


class WebPushSender:
    """Sends to browser push subscriptions; see `PushSender`. 404 and 410 mean the
    subscription has expired or was withdrawn (GONE)."""

    def __init__(
        self,
        vapid_key: ec.EllipticCurvePrivateKey,
        subject: str,
        http_client: httpx.AsyncClient,
        *,
        allowed_hosts: Sequence[str] = (),
        allow_private_targets: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not subject.startswith(("mailto:", "https:")):
            raise ValueError("VAPID_SUBJECT must be a mailto: or https: URL")
        self._vapid = Vapid02(vapid_key)
        self._subject = subject
        self._client = http_client
        self._allowed_hosts = list(allowed_hosts)
        self._allow_private = allow_private_targets
        self._clock = clock
        self._signatures: dict[str, tuple[str, float]] = {}  # origin -> (header, expiry)

    async def send(self, device: Device, push: Push) -> Attempt:
        started = time.perf_counter()
        attempt = await self._send(device, push)
        return finish(attempt, device, started)

    async def close(self) -> None:
        """Nothing to release: the HTTP client belongs to whoever passed it in."""

    async def _send(self, device: Device, push: Push) -> Attempt:
        if not device.endpoint or not device.p256dh or not device.auth:
            return failed(Outcome.PERMANENT, "Web Push device lacks endpoint, p256dh or auth")
        refusal = await self._refuse_target(device.endpoint)
        if refusal is not None:
            return refusal
        try:
            receiver_key = b64url_decode(device.p256dh)
            auth_secret = b64url_decode(device.auth)
            body = encrypt(fit_push(push, payload, PLAINTEXT_LIMIT), receiver_key, auth_secret)
        except (ValueError, http_ece.ECEException):
            return failed(Outcome.PERMANENT, "Web Push subscription keys are unusable", "KEYS")
        headers = {
            "TTL": str(push.ttl_s),
            "Urgency": _URGENCY.get(push.priority, "normal"),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": self._authorization(device.endpoint),
        }
        try:
            response = await self._client.post(device.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return network_failure(exc)
        if response.is_success:
            location = response.headers.get("location")
            return Attempt(Outcome.SENT, code=str(response.status_code), provider_id=location)
        if response.status_code in (404, 410):
            return http_failure(response, outcome=Outcome.GONE)
        return http_failure(response)

    def _authorization(self, endpoint: str) -> str:
        """`vapid t=<JWT>,k=<public key>` for the endpoint's origin, reused until an hour
        before it expires (signing anew on every send would be waste)."""
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        now = self._clock()
        cached = self._signatures.get(origin)
        if cached is not None and cached[1] - now > _VAPID_RENEW_BEFORE_S:
            return cached[0]
        expiry = int(now) + VAPID_LIFETIME_S
        claims = {"aud": origin, "exp": expiry, "sub": self._subject}
        header = str(self._vapid.sign(claims)["Authorization"])
        self._signatures[origin] = (header, expiry)
        return header

    async def _refuse_target(self, endpoint: str) -> Attempt | None:
        """None when the endpoint may be sent to; otherwise the attempt that says why not."""
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
        schemes = ("https", "http") if self._allow_private else ("https",)
        if parts.scheme not in schemes or not host:
            return failed(Outcome.PERMANENT, "Web Push endpoint must be an https URL", "TARGET")
        # The very rule registration applied (`check_target_url`): a subscription that
        # registered is never refused here for its host.
        if self._allowed_hosts and not host_allowed(host, self._allowed_hosts):
            return failed(Outcome.PERMANENT, f"Web Push host {host} is not allowed", "TARGET")
        if self._allow_private:
            return None
        try:
            addresses = await _addresses(host, parts.port or 443)
        except OSError as exc:
            return network_failure(exc)
        if not all(is_public_address(address) for address in addresses):
            return failed(
                Outcome.PERMANENT, f"Web Push host {host} is a private address", "TARGET"
            )
        return None


def payload(push: Push, truncated: bool) -> bytes:
    """What the service worker's `push` event reads with `event.data.json()`."""
    document: dict[str, Any] = {
        "notification_id": push.notification_id,
        "title": push.title,
        "body": push.body,
        "data": dict(push.data),
        "priority": push.priority,
    }
    if truncated:
        document["truncated"] = True
    return compact_json(document)


def encrypt(plaintext: bytes, receiver_key: bytes, auth_secret: bytes) -> bytes:
    """RFC 8291: a fresh ephemeral key and salt per message, one aes128gcm record."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        plaintext,
        private_key=ephemeral,
        dh=receiver_key,
        auth_secret=auth_secret,
        version="aes128gcm",
        rs=RECORD_SIZE,
    )
    return body


def load_vapid_key(text: str) -> ec.EllipticCurvePrivateKey:
    """`VAPID_PRIVATE_KEY` as the usual tools print it: the raw 32-byte scalar in
    base64url, or a PEM or base64 DER private key. ValueError when it is none of these."""
    text = text.strip().replace("\\n", "\n")
    key: object
    if "-----BEGIN" in text:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        raw = b64url_decode(text)
        if len(raw) == 32:
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        else:
            key = serialization.load_der_private_key(raw, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("VAPID_PRIVATE_KEY must be a P-256 private key")
    return key


def vapid_public_key(key: ec.EllipticCurvePrivateKey) -> str:
    """The application server key browsers pass to `pushManager.subscribe`: the public
    point, uncompressed (65 bytes), base64url without padding."""
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """base64url with or without padding (browsers leave it off); ValueError if not."""
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


async def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    # A resolver that never answers must not hold the delivery: TimeoutError is an OSError.
    async with asyncio.timeout(_RESOLVE_TIMEOUT_S):
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
