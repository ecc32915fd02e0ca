"""SMS through Twilio's Messages API: `POST {TWILIO_ENDPOINT}/2010-04-01/Accounts/{SID}/
Messages.json` with a form body (`To`, `From`, `Body`) and HTTP basic authentication
(account SID and auth token).

Twilio's answers (docs/DELIVERY.md): 201 with the message's `sid` is sent; 408, 429 (its
error 20429) and 5xx are transient, `Retry-After` honoured; 400 with error 21611 (the
`From` number's queue is full) is transient too, since the queue drains; any other 4xx is
permanent (21211 an invalid `To`, 21610 a recipient who unsubscribed with STOP, 21614 a
number that takes no SMS, 21408 a region not enabled, 20003 wrong credentials). The
attempt's `code` is Twilio's error code where it gave one, else the HTTP status.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from tidings.delivery.http_post import post
from tidings.delivery.messages import Sms
from tidings.delivery.outcome import Attempt, Outcome

FORM = "application/x-www-form-urlencoded"
# Twilio errors that a later try may pass although the HTTP status is a 4xx.
TRANSIENT_CODES = frozenset({21611})


class TwilioSender:
    """Sends `Sms` records from one Twilio account, on a client owned by the caller."""

    def __init__(self, client: httpx.AsyncClient, *, account_sid: str, auth_token: str,
                 sender: str, endpoint: str, timeout_s: float = 10.0) -> None:
        self._client = client
        self._url = (f"{endpoint.rstrip('/')}/2010-04-01/Accounts/"
                     f"{quote(account_sid, safe='')}/Messages.json")
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._headers = {"Authorization": f"Basic {credentials}", "Accept": "application/json"}
        self._sender = sender
        self._timeout = timeout_s

    async def send(self, sms: Sms) -> Attempt:
        form = urlencode({"To": sms.to, "From": self._sender, "Body": sms.body}).encode()
        answer = await post(self._client, self._url, form, self._headers, self._timeout, FORM)
        attempt, body = answer.attempt, answer.body
        if attempt.outcome is Outcome.SENT:
            sid = body.get("sid") if isinstance(body, dict) else None
            return Attempt(Outcome.SENT, code=attempt.code,
                           provider_id=sid if isinstance(sid, str) else None,
                           elapsed_s=attempt.elapsed_s)
        code = _twilio_code(body)
        if code is None:
            return attempt  # no answer, or no Twilio error in it: judged by the status
        outcome = Outcome.TRANSIENT if int(code) in TRANSIENT_CODES else attempt.outcome
        return Attempt(outcome, code=code, error=f"HTTP {attempt.code}: Twilio error "
                       f"{code}{_message(body)}", retry_after_s=attempt.retry_after_s,
                       elapsed_s=attempt.elapsed_s)

    async def close(self) -> None:
        """Nothing of its own to release: the HTTP client belongs to the caller."""


def _twilio_code(body: Any) -> str | None:
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and 0 < code < 10**6:
        return str(code)
    return None


def _message(body: dict[str, Any]) -> str:
    message = body.get("message")
    if isinstance(message, str) and message.strip():
        return ": " + " ".join(message.split())[:200]
    return ""
