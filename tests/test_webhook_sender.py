"""Webhooks against a real receiver on loopback that verifies Standard Webhooks signatures,
and the target URL checks used when webhooks and Web Push subscriptions are registered."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.fakes.web import HANG, Recorded, Reply, ScriptedHTTP, http_server
from tidings.delivery.messages import WebhookEvent
from tidings.delivery.outcome import Outcome
from tidings.delivery.targets import UnresolvableTarget, check_target_url, host_allowed
from tidings.delivery.webhooks.sender import WebhookSender, encode_event, generate_secret
from tidings.domain.errors import ValidationFailed

SECRET = generate_secret()


def verifying(secret: str) -> ScriptedHTTP:
    """A receiver that answers 204 to requests signed with `secret`, 400 to others."""

    def check(request: Recorded) -> Reply | None:
        try:
            Webhook(secret).verify(request.body, request.headers)
        except WebhookVerificationError:
            return Reply(400, json={"error": "bad signature"})
        return None

    return ScriptedHTTP(default=Reply(204), check=check)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[ScriptedHTTP, str]]:
    script = verifying(SECRET)
    async with http_server(script) as base:
        yield script, f"{base}/hooks/tidings"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def make_event(url: str, **overrides: Any) -> WebhookEvent:
    fields: dict[str, Any] = {
        "id": "msg_2f1c",
        "type": "delivery.dead",
        "timestamp": 1_790_000_000,
        "data": {"delivery_id": "d1", "medium": "email", "last_error": "550 — no such user"},
        "url": url,
        "secret": SECRET,
    }
    fields.update(overrides)
    return WebhookEvent(**fields)


async def test_webhook_is_signed_so_the_receiver_verifies_it(
    receiver: tuple[ScriptedHTTP, str], client: httpx.AsyncClient
) -> None:
    script, url = receiver
    sender = WebhookSender(client, allow_private=True)
    attempt = await sender.send(make_event(url))
    await sender.close()

    assert attempt.outcome is Outcome.SENT
    assert attempt.code == "204"
    assert attempt.provider_id == "msg_2f1c"
    [request] = script.requests
    assert request.method == "POST"
    assert request.path == "/hooks/tidings"
    assert request.headers["webhook-id"] == "msg_2f1c"
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["Content-Type"] == "application/json"
    assert Webhook(SECRET).verify(request.body, request.headers) == {
        "type": "delivery.dead",
        "timestamp": "2026-09-21T14:13:20Z",
        "data": {"delivery_id": "d1", "medium": "email", "last_error": "550 — no such user"},
    }


async def test_tampered_body_signature_or_secret_fails_verification(
    receiver: tuple[ScriptedHTTP, str], client: httpx.AsyncClient
) -> None:
    script, url = receiver
    await WebhookSender(client, allow_private=True).send(make_event(url))
    request = script.requests[0]
    verifier = Webhook(SECRET)

    tampered_body = request.body.replace(b"delivery.dead", b"delivery.sent")
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered_body, request.headers)
    signature = request.headers["webhook-signature"]
    flipped = base64.b64decode(signature[3:])
    flipped = bytes([flipped[0] ^ 1]) + flipped[1:]
    forged = {**request.headers,
              "webhook-signature": "v1," + base64.b64encode(flipped).decode()}
    with pytest.raises(WebhookVerificationError):
        verifier.verify(request.body, forged)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(request.body, request.headers)


async def test_webhook_signed_with_another_secret_is_refused_and_permanent(
    receiver: tuple[ScriptedHTTP, str], client: httpx.AsyncClient
) -> None:
    _script, url = receiver
    attempt = await WebhookSender(client, allow_private=True).send(
        make_event(url, secret=generate_secret())
    )

    assert attempt.outcome is Outcome.PERMANENT
    assert attempt.code == "400"
    assert attempt.error == "HTTP 400: bad signature"


async def test_every_attempt_keeps_the_webhook_id_and_is_signed_afresh(
    receiver: tuple[ScriptedHTTP, str], client: httpx.AsyncClient
) -> None:
    script, url = receiver
    script.replies.append(Reply(503))
    sender = WebhookSender(client, allow_private=True)
    first = await sender.send(make_event(url))
    second = await sender.send(make_event(url))

    assert (first.outcome, second.outcome) == (Outcome.TRANSIENT, Outcome.SENT)
    assert [r.headers["webhook-id"] for r in script.requests] == ["msg_2f1c", "msg_2f1c"]
    for request in script.requests:
        Webhook(SECRET).verify(request.body, request.headers)


@pytest.mark.parametrize(
    ("reply", "outcome", "retry_after"),
    [
        (Reply(200), Outcome.SENT, None),
        (Reply(429, {"Retry-After": "30"}), Outcome.TRANSIENT, 30.0),
        (Reply(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), Outcome.TRANSIENT, 0.0),
        (Reply(502), Outcome.TRANSIENT, None),
        (Reply(410), Outcome.PERMANENT, None),
        (Reply(404), Outcome.PERMANENT, None),
        (Reply(307, {"Location": "http://169.254.169.254/latest"}), Outcome.PERMANENT, None),
    ],
)
async def test_webhook_answers_are_classified_and_redirects_not_followed(
    receiver: tuple[ScriptedHTTP, str], client: httpx.AsyncClient,
    reply: Reply, outcome: Outcome, retry_after: float | None,
) -> None:
    script, url = receiver
    script.replies.append(reply)
    attempt = await WebhookSender(client, allow_private=True).send(make_event(url))

    assert attempt.outcome is outcome
    assert attempt.code == str(reply.status)
    assert attempt.retry_after_s == retry_after
    assert len(script.requests) == 1


async def test_webhook_receiver_that_hangs_is_a_transient_timeout(
    receiver: tuple[ScriptedHTTP, str], client: httpx.AsyncClient
) -> None:
    script, url = receiver
    script.replies.append(HANG)
    attempt = await WebhookSender(client, allow_private=True, timeout_s=0.3).send(
        make_event(url)
    )

    assert attempt.outcome is Outcome.TRANSIENT
    assert attempt.error == "timed out"


async def test_webhook_refused_connection_is_transient(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    attempt = await WebhookSender(client, allow_private=True).send(
        make_event(f"http://127.0.0.1:{port}/hook")
    )

    assert attempt.outcome is Outcome.TRANSIENT
    assert attempt.code is None


async def test_webhook_to_a_private_address_is_permanent_and_never_sent(
    receiver: tuple[ScriptedHTTP, str], client: httpx.AsyncClient
) -> None:
    script, url = receiver
    attempt = await WebhookSender(client).send(make_event(url))

    assert attempt.outcome is Outcome.PERMANENT
    assert attempt.error is not None and "non-public" in attempt.error
    assert script.requests == []


async def test_webhook_to_a_name_that_does_not_resolve_is_transient(
    client: httpx.AsyncClient,
) -> None:
    attempt = await WebhookSender(client).send(make_event("https://hooks.example.invalid/x"))

    assert attempt.outcome is Outcome.TRANSIENT


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_!!!!"])
async def test_webhook_with_an_unusable_secret_is_permanent(
    receiver: tuple[ScriptedHTTP, str], client: httpx.AsyncClient, secret: str
) -> None:
    script, url = receiver
    attempt = await WebhookSender(client, allow_private=True).send(
        make_event(url, secret=secret)
    )

    assert attempt.outcome is Outcome.PERMANENT
    assert attempt.error == "unusable webhook secret"
    assert script.requests == []


def test_generated_secrets_are_whsec_base64_of_32_random_bytes() -> None:
    first, second = generate_secret(), generate_secret()

    assert first.startswith("whsec_") and second.startswith("whsec_")
    assert first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert len(base64.b64decode(generate_secret(24)[6:], validate=True)) == 24
    with pytest.raises(ValueError):
        generate_secret(8)


def test_event_body_is_compact_utf8_json_with_rfc3339_timestamp() -> None:
    body = encode_event(make_event("https://hooks.test/", data={"title": "Grüße"}))

    assert body == '{"type":"delivery.dead","timestamp":"2026-09-21T14:13:20Z",' \
                   '"data":{"title":"Grüße"}}'
    assert json.loads(body)["data"] == {"title": "Grüße"}


# -- target URL checks -----------------------------------------------------------------


REFUSED = [
    "ftp://example.com/hook",
    "javascript:alert(1)",
    "not a url",
    "http://",
    "https:///path-only",
    "http://example.com:99999/",
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/",
    "http://localhost:3001/",
    "http://10.0.0.7/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://169.254.169.254/latest/meta-data",  # cloud metadata, link-local
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[ff02::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
    "http://[64:ff9b::a00:1]/",  # NAT64 wrapping 10.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
]

ALLOWED = [
    "https://8.8.8.8/hook",
    "http://1.1.1.1:8080/x?y=1",
    "https://[2606:4700:4700::1111]/hook",
    "https://[::ffff:8.8.8.8]/",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_private_loopback_and_malformed_targets_are_refused(url: str) -> None:
    with pytest.raises(ValidationFailed) as failure:
        await check_target_url(url, allow_private=False)
    assert failure.value.field == "url"


@pytest.mark.parametrize("url", ALLOWED)
async def test_public_literal_addresses_are_allowed(url: str) -> None:
    await check_target_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "http://localhost/", "http://[::1]:9/", "http://10.1.2.3/"]
)
async def test_private_targets_are_allowed_when_configured(url: str) -> None:
    await check_target_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "http:///nohost"])
async def test_scheme_and_host_are_required_even_when_private_targets_are_allowed(
    url: str,
) -> None:
    with pytest.raises(ValidationFailed):
        await check_target_url(url, allow_private=True, field="subscription.endpoint")


async def test_a_name_that_does_not_resolve_is_refused_naming_the_field() -> None:
    with pytest.raises(UnresolvableTarget) as failure:
        await check_target_url("https://push.example.invalid/x", allow_private=False,
                               field="subscription.endpoint")
    assert failure.value.field == "subscription.endpoint"


ALLOWED_PUSH_HOSTS = ["fcm.googleapis.com", "*.push.apple.com", ".mozilla.com"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", True),
        ("https://FCM.googleapis.com./fcm/send/abc", True),
        ("https://web.push.apple.com/QGu", True),
        ("https://push.apple.com/QGu", True),
        ("https://updates.push.services.mozilla.com/wpush/v2/x", True),
        ("https://evilfcm.googleapis.com/x", False),
        ("https://googleapis.com/x", False),
        ("https://fcm.googleapis.com.evil.test/x", False),
        ("https://notpush.apple.com/x", False),
    ],
)
async def test_push_endpoints_are_limited_to_allowed_hosts_by_whole_labels(
    url: str, allowed: bool
) -> None:
    check = check_target_url(url, allow_private=True, allowed_hosts=ALLOWED_PUSH_HOSTS,
                             field="subscription.endpoint")
    if allowed:
        await check
    else:
        with pytest.raises(ValidationFailed) as failure:
            await check
        assert failure.value.field == "subscription.endpoint"


def test_blank_allowed_host_entries_match_nothing() -> None:
    assert not host_allowed("example.com", ["", " ", "*."])
    assert host_allowed("a.b.example.com", ["example.com"])
