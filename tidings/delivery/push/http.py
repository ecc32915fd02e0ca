"""An internal HTTP push service (`PUSH_SERVICE_URL`): one JSON POST per device, for sites
that keep their provider credentials in a gateway of their own. The body is documented in
docs/PUSH.md; the service answers like any HTTP provider (410 for a device it knows is
gone)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tidings.delivery.messages import Device, Platform, Push
from tidings.delivery.outcome import Attempt, Outcome
from tidings.delivery.push.base import (
    compact_json,
    finish,
    http_failure,
    json_object,
    network_failure,
    stable_id,
)


class HttpPushSender:
    """POSTs pushes to the internal push service; see `PushSender`. The same
    `Idempotency-Key` goes with every attempt of one delivery to one device, so the service
    can drop repeats."""

    def __init__(self, url: str, api_key: str, http_client: httpx.AsyncClient) -> None:
        self._url = url
        self._api_key = api_key
        self._client = http_client

    async def send(self, device: Device, push: Push) -> Attempt:
        started = time.perf_counter()
        key = stable_id(push, device)
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            response = await self._client.post(
                self._url, content=compact_json(request_body(device, push, key)), headers=headers
            )
        except httpx.HTTPError as exc:
            return finish(network_failure(exc), device, started)
        if response.is_success:
            provider_id = json_object(response).get("id")
            attempt = Attempt(
                Outcome.SENT,
                code=str(response.status_code),
                provider_id=str(provider_id) if provider_id is not None else None,
            )
        elif response.status_code == 410:
            attempt = http_failure(response, outcome=Outcome.GONE)
        else:
            attempt = http_failure(response)
        return finish(attempt, device, started)

    async def close(self) -> None:
        """Nothing to release: the HTTP client belongs to whoever passed it in."""


def request_body(device: Device, push: Push, idempotency_key: str) -> dict[str, Any]:
    target: dict[str, Any] = {"id": device.id, "platform": device.platform.value}
    if device.platform is Platform.WEBPUSH:
        target["subscription"] = {
            "endpoint": device.endpoint,
            "keys": {"p256dh": device.p256dh, "auth": device.auth},
        }
    else:
        target["token"] = device.token
    return {
        "device": target,
        "notification_id": push.notification_id,
        "title": push.title,
        "body": push.body,
        "data": dict(push.data),
        "priority": push.priority,
        "ttl": push.ttl_s,
        "idempotency_key": idempotency_key,
    }
