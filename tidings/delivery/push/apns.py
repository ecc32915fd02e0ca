"""Apple Push Notification service: HTTP/2 with token (.p8 key) authentication.

The provider token is an ES256 JWT (`iss` the team, `kid` the key, `iat` now). Apple
refuses tokens older than an hour and throttles ones renewed too often, so one token is
reused for up to 50 minutes and then replaced. The sender owns its HTTP/2 client: APNs
wants one long-lived multiplexed connection, unlike the other providers.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tidings.delivery.messages import Device, Push
from tidings.delivery.outcome import Attempt, Outcome
from tidings.delivery.push.base import (
    compact_json,
    failed,
    finish,
    fit_push,
    http_failure,
    is_urgent,
    json_object,
    network_failure,
    stable_id,
    stable_uuid,
)

TOKEN_MAX_AGE_S = 50 * 60
PAYLOAD_LIMIT = 4096  # bytes, for a regular (non-VoIP) notification
# Reasons that say this token will never reach a device for this app again.
_GONE_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"})


class ApnsSender:
    """Sends alerts to APNs; see `PushSender`. The reason APNs gives goes into
    `Attempt.code`; an expired provider token is replaced and the attempt counts as
    transient."""

    def __init__(
        self,
        signing_key: str,  # the .p8 file's PEM text
        key_id: str,
        team_id: str,
        topic: str,
        endpoint: str = "https://api.push.apple.com",
        *,
        verify: ssl.SSLContext | str | bool = True,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = serialization.load_pem_private_key(signing_key.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the APNs key must be an EC (P-256) private key (.p8)")
        self._signing_key = key
        self._key_id = key_id
        self._team_id = team_id
        self._topic = topic
        self._endpoint = endpoint.rstrip("/")
        self._clock = clock
        self._token: str | None = None
        self._token_iat = 0.0
        self._client = httpx.AsyncClient(http2=True, verify=verify, timeout=timeout)

    async def send(self, device: Device, push: Push) -> Attempt:
        started = time.perf_counter()
        if not device.token:
            attempt = failed(Outcome.PERMANENT, "APNs device has no token")
        else:
            attempt = await self._send(device, device.token, push)
        return finish(attempt, device, started)

    async def close(self) -> None:
        await self._client.aclose()

    def provider_token(self) -> str:
        """The current provider JWT, made anew once it is 50 minutes old."""
        now = self._clock()
        if self._token is None or now - self._token_iat >= TOKEN_MAX_AGE_S:
            self._token_iat = now
            self._token = jwt.encode(
                {"iss": self._team_id, "iat": int(now)},
                self._signing_key,
                algorithm="ES256",
                headers={"kid": self._key_id},
            )
        return self._token

    async def _send(self, device: Device, token: str, push: Push) -> Attempt:
        apns_id = str(stable_uuid(stable_id(push, device)))
        headers = {
            "authorization": f"bearer {self.provider_token()}",
            "apns-topic": self._topic,
            "apns-push-type": "alert",
            "apns-priority": "10" if is_urgent(push) else "5",
            # 0 asks APNs to try once and keep nothing, which is what a TTL of 0 means.
            "apns-expiration": str(int(self._clock()) + push.ttl_s if push.ttl_s > 0 else 0),
            "apns-id": apns_id,
        }
        url = f"{self._endpoint}/3/device/{quote(token, safe='')}"
        body = fit_push(push, payload, PAYLOAD_LIMIT)
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return network_failure(exc)
        if response.status_code == 200:
            provider_id = response.headers.get("apns-id", apns_id)
            return Attempt(Outcome.SENT, code="200", provider_id=provider_id)
        return self._failure(response)

    def _failure(self, response: httpx.Response) -> Attempt:
        reason = json_object(response).get("reason")
        code = reason if isinstance(reason, str) else None
        status = response.status_code
        if status == 410 or (status == 400 and code in _GONE_REASONS):
            return http_failure(response, code, Outcome.GONE)
        if status == 403 and code == "ExpiredProviderToken":
            self._token = None
            return http_failure(response, code, Outcome.TRANSIENT)
        return http_failure(response, code)


def payload(push: Push, truncated: bool) -> bytes:
    """`{"aps": {"alert": {title, body}}, ...data}`; the app's data cannot replace `aps`."""
    document: dict[str, Any] = {
        key: value for key, value in push.data.items() if str(key) != "aps"
    }
    document.setdefault("notification_id", push.notification_id)
    if truncated:
        document["truncated"] = True
    document["aps"] = {"alert": {"title": push.title, "body": push.body}}
    return compact_json(document)
