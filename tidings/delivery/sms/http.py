"""SMS through the surrounding architecture's own HTTP SMS service (SMS_SERVICE_URL):
`POST` with `Authorization: Bearer {SMS_SERVICE_API_KEY}` and JSON `{"to", "body",
"notification_id", "user_id"}` (contract section 14). A 2xx accepts it, the answer's `id`
(if any) being the provider id; other answers are judged as for every HTTP provider. The
record's idempotency key goes as `Idempotency-Key`, so a retry after a lost answer is
recognisable."""

from __future__ import annotations

import json

import httpx

from tidings.delivery.http_post import post_json
from tidings.delivery.messages import Sms
from tidings.delivery.outcome import Attempt, Outcome


class HttpSmsSender:
    def __init__(self, client: httpx.AsyncClient, *, url: str, api_key: str = "",
                 timeout_s: float = 10.0) -> None:
        self._client = client
        self._url = url
        self._api_key = api_key
        self._timeout = timeout_s

    async def send(self, sms: Sms) -> Attempt:
        headers = {"Idempotency-Key": sms.idempotency_key} if sms.idempotency_key else {}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        body = json.dumps({"to": sms.to, "body": sms.body, "notification_id": sms.notification_id,
                           "user_id": sms.user_id}, ensure_ascii=False,
                          separators=(",", ":")).encode()
        answer = await post_json(self._client, self._url, body, headers, self._timeout)
        attempt = answer.attempt
        if attempt.outcome is not Outcome.SENT:
            return attempt
        found = answer.body.get("id") if isinstance(answer.body, dict) else None
        return Attempt(Outcome.SENT, code=attempt.code,
                       provider_id=str(found) if isinstance(found, str | int) else None,
                       elapsed_s=attempt.elapsed_s)

    async def close(self) -> None:
        """Nothing of its own to release: the HTTP client belongs to the caller."""
