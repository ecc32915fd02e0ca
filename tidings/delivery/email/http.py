"""Email through the surrounding architecture's own HTTP email service (EMAIL_SERVICE_URL).

One JSON POST per message (the body is documented in docs/DELIVERY.md), with the record's
idempotency key as `Idempotency-Key`, so a retry after a lost answer is recognisable as
the same request. Answers are judged by `classify_http`, `Retry-After` is honoured, and
network errors and timeouts are transient. The API key is sent, never logged.
"""

from __future__ import annotations

import json

import httpx

from tidings.delivery.email.format import list_headers, one_line
from tidings.delivery.http_post import post_json
from tidings.delivery.messages import Email
from tidings.delivery.outcome import Attempt, Outcome
from tidings.domain.addresses import valid_address


class HttpEmailSender:
    """Sends `Email` records as JSON to one URL, on a client owned by the caller."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        url: str,
        sender: str,
        api_key: str = "",
        timeout_s: float = 10.0,
    ) -> None:
        self._client = client
        self._url = url
        self._sender = sender
        self._api_key = api_key
        self._timeout = timeout_s

    async def send(self, email: Email) -> Attempt:
        if not valid_address(email.to):
            return Attempt(Outcome.PERMANENT, error="invalid recipient address")
        headers = {"Idempotency-Key": email.idempotency_key or email.message_id}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        answer = await post_json(
            self._client, self._url, encode_email(email, self._sender), headers, self._timeout
        )
        attempt = answer.attempt
        if attempt.outcome is not Outcome.SENT:
            return attempt
        body = answer.body
        provider_id = body.get("id") if isinstance(body, dict) else None
        return Attempt(
            Outcome.SENT,
            code=attempt.code,
            provider_id=provider_id if isinstance(provider_id, str) else email.message_id,
            elapsed_s=attempt.elapsed_s,
        )

    async def close(self) -> None:
        """Nothing of its own to release: the HTTP client belongs to the caller."""


def encode_email(email: Email, sender: str) -> bytes:
    """The request body: what an SMTP sender would put in the message, as JSON."""
    return json.dumps(
        {
            "to": email.to,
            "from": sender,
            "subject": one_line(email.subject),
            "text": email.text,
            "html": email.html,
            "message_id": email.message_id,
            "headers": list_headers(email),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
