"""Firebase Cloud Messaging, HTTP v1 API: one `messages:send` request per device.

The OAuth2 access token comes from the service-account JSON through google-auth (the
JWT-bearer grant goes to the file's `token_uri`) and is reused until shortly before it
expires. google-auth refreshes synchronously, so the refresh runs in a worker thread; its
one HTTP request is carried back to the event loop and made with the shared async client,
so the whole sender uses one connection pool and one set of timeouts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
from google.auth import exceptions as google_exceptions
from google.auth import transport as google_transport
from google.oauth2 import service_account

from tidings.delivery.messages import Device, Push
from tidings.delivery.outcome import Attempt, Outcome
from tidings.delivery.push.base import (
    failed,
    finish,
    http_failure,
    is_urgent,
    json_object,
    network_failure,
)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# Data keys FCM refuses (the message would fail as a whole): they are left out.
_RESERVED_KEYS = frozenset({"from", "notification", "message_type"})
_RESERVED_PREFIXES = ("google", "gcm")


class FcmSender:
    """Sends through FCM HTTP v1 with a service account; see `PushSender`.

    401 answers drop the cached access token (the next attempt gets a new one) and count as
    transient."""

    def __init__(
        self,
        credentials: service_account.Credentials,
        project_id: str,
        http_client: httpx.AsyncClient,
        endpoint: str = "https://fcm.googleapis.com",
    ) -> None:
        self._credentials = credentials
        self._client = http_client
        self._url = f"{endpoint.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._refresh_lock = asyncio.Lock()

    @classmethod
    def from_file(
        cls, path: str, http_client: httpx.AsyncClient, endpoint: str
    ) -> FcmSender:
        """Read a service-account JSON file (at start-up: it is a small local file)."""
        credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            path, scopes=[SCOPE]
        )
        return cls(credentials, credentials.project_id, http_client, endpoint)

    async def send(self, device: Device, push: Push) -> Attempt:
        started = time.perf_counter()
        if not device.token:
            attempt = failed(Outcome.PERMANENT, "FCM device has no token")
        else:
            attempt = await self._send(device.token, push)
        return finish(attempt, device, started)

    async def close(self) -> None:
        """Nothing to release: the HTTP client belongs to whoever passed it in."""

    async def _send(self, token: str, push: Push) -> Attempt:
        try:
            access_token = await self._access_token()
        except google_exceptions.GoogleAuthError as exc:
            return _token_failure(exc)
        try:
            response = await self._client.post(
                self._url,
                json=message_body(token, push),
                headers={"Authorization": f"Bearer {access_token}"},
            )
        except httpx.HTTPError as exc:
            return network_failure(exc)
        if response.is_success:
            name = json_object(response).get("name")
            provider_id = name if isinstance(name, str) else None
            return Attempt(Outcome.SENT, code=str(response.status_code), provider_id=provider_id)
        if response.status_code == 401:
            self._credentials.token = None  # expired or revoked: fetch another next time
            return http_failure(response, "UNAUTHENTICATED", Outcome.TRANSIENT)
        return classify_error(response)

    async def _access_token(self) -> str:
        async with self._refresh_lock:
            if not self._credentials.valid:  # no token yet, or within minutes of expiry
                request = _LoopRequest(asyncio.get_running_loop(), self._client)
                await asyncio.to_thread(self._credentials.refresh, request)
            return str(self._credentials.token)


def message_body(token: str, push: Push) -> dict[str, Any]:
    """The `messages:send` body: notification, string-only data, Android and APNs priority
    and time to live."""
    urgent = is_urgent(push)
    data = {"notification_id": push.notification_id, **string_data(push.data)}
    return {
        "message": {
            "token": token,
            "notification": {"title": push.title, "body": push.body},
            "data": data,
            "android": {"priority": "high" if urgent else "normal", "ttl": f"{push.ttl_s}s"},
            "apns": {"headers": {"apns-priority": "10" if urgent else "5"}},
        }
    }


def string_data(data: Mapping[str, Any]) -> dict[str, str]:
    """FCM data values must be strings: strings pass as they are, anything else as JSON.
    Keys FCM reserves are dropped rather than failing the whole message."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = str(key)
        if name in _RESERVED_KEYS or name.lower().startswith(_RESERVED_PREFIXES):
            continue
        out[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    return out


def classify_error(response: httpx.Response) -> Attempt:
    """FCM's error answer: an unregistered or malformed token means the device is gone;
    otherwise the HTTP status decides (429 and 5xx transient, other 4xx permanent)."""
    error = json_object(response).get("error")
    error = error if isinstance(error, dict) else {}
    status = error.get("status") if isinstance(error.get("status"), str) else None
    fcm_code: str | None = None
    fields: list[str] = []
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        if isinstance(detail.get("errorCode"), str):
            fcm_code = detail["errorCode"]
        for violation in detail.get("fieldViolations") or []:
            if isinstance(violation, dict):
                fields.append(str(violation.get("field", "")))
    code = fcm_code or status or str(response.status_code)
    message = str(error.get("message", "")).lower()
    names_token = "message.token" in fields or "registration token" in message
    if (
        response.status_code == 404
        or code == "UNREGISTERED"
        or (code == "INVALID_ARGUMENT" and names_token)
    ):
        return http_failure(response, code, Outcome.GONE)
    return http_failure(response, code)


def _token_failure(exc: google_exceptions.GoogleAuthError) -> Attempt:
    # google-auth marks the token endpoint's 5xx, 429 and network failures retryable;
    # a refused grant (bad key, unknown account) stays refused until someone fixes it.
    retryable = bool(getattr(exc, "retryable", False)) or isinstance(
        exc, google_exceptions.TransportError
    )
    outcome = Outcome.TRANSIENT if retryable else Outcome.PERMANENT
    return failed(outcome, f"FCM access token: {type(exc).__name__}", "TOKEN")


class _Response(google_transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class _LoopRequest(google_transport.Request):
    """google-auth's transport, called from the refresh thread: each request is run on the
    event loop with the shared async client, and the thread waits for its answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> None:
        self._loop = loop
        self._client = client

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _Response:
        request = self._client.request(method, url, content=body, headers=headers)
        try:
            response = asyncio.run_coroutine_threadsafe(request, self._loop).result()
        except httpx.HTTPError as exc:
            raise google_exceptions.TransportError(type(exc).__name__) from exc  # type: ignore[no-untyped-call]
        return _Response(response)
