"""Push senders against loopback stand-ins of FCM, APNs, a browser push service and the
internal push gateway, each checking the real request format (OAuth2 JWT grant, ES256
provider tokens over HTTP/2 and TLS, RFC 8291 encryption, VAPID) and answering like the
provider, including its refusals, throttling, outages and silences."""

from __future__ import annotations

import base64
import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.pushfakes.apns import FakeApns
from tests.pushfakes.fcm import FakeFcm
from tests.pushfakes.server import HANG, Reply, running
from tests.pushfakes.service import FakePushGateway
from tests.pushfakes.webpush import FakePushService, b64url
from tidings.config.settings import Settings
from tidings.delivery.messages import Device, Platform, Push
from tidings.delivery.outcome import Outcome
from tidings.delivery.push.apns import TOKEN_MAX_AGE_S, ApnsSender
from tidings.delivery.push.base import ELLIPSIS, fit_push, stable_uuid
from tidings.delivery.push.fcm import FcmSender
from tidings.delivery.push.http import HttpPushSender
from tidings.delivery.push.router import (
    ConfigError,
    PushRouter,
    build_push_senders,
    public_vapid_key,
)
from tidings.delivery.push.webpush import (
    PLAINTEXT_LIMIT,
    WebPushSender,
    load_vapid_key,
    vapid_public_key,
)
from tidings.delivery.targets import check_target_url
from tidings.domain.errors import ValidationFailed

PROJECT = "demo-project"
ACCOUNT = f"sender@{PROJECT}.iam.gserviceaccount.com"
KEY_ID, TEAM_ID, TOPIC = "ABC123DEFG", "TEAM123456", "com.example.tidings"
APNS_TOKEN = "a1" * 32
SUBJECT = "mailto:ops@example.com"
QUICK = 0.3  # seconds: the client timeout for tests where the provider never answers

PUSH = Push(
    notification_id="n-1",
    title="Build finished",
    body="main is green again",
    data={"build": 42, "ok": True, "url": "https://ci.example.com/42"},
    priority="high",
    ttl_s=600,
    idempotency_key="delivery-7:device",
)


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def apns_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def vapid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trust(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
async def quick_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=QUICK) as client:
        yield client


# ---- FCM ----------------------------------------------------------------------------------


@dataclass
class FcmRig:
    fake: FakeFcm
    url: str
    credentials_file: Path


@pytest.fixture
async def fcm(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> AsyncIterator[FcmRig]:
    fake = FakeFcm(rsa_key.public_key(), PROJECT, ACCOUNT)
    async with running(fake) as url:
        path = tmp_path / "service-account.json"
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": PROJECT,
                    "private_key_id": "key-1",
                    "private_key": pem(rsa_key),
                    "client_email": ACCOUNT,
                    "client_id": "1234567890",
                    "token_uri": f"{url}/token",
                }
            )
        )
        yield FcmRig(fake, url, path)


def fcm_sender(rig: FcmRig, client: httpx.AsyncClient) -> FcmSender:
    return FcmSender.from_file(str(rig.credentials_file), client, rig.url)


FCM_DEVICE = Device(id="dev-fcm", platform=Platform.FCM, token="fcm-registration-token")


async def test_fcm_sends_with_an_oauth_token_from_the_service_account(
    fcm: FcmRig, http_client: httpx.AsyncClient
) -> None:
    attempt = await fcm_sender(fcm, http_client).send(FCM_DEVICE, PUSH)

    assert attempt.outcome is Outcome.SENT, attempt.error
    assert attempt.provider_id == f"projects/{PROJECT}/messages/1"
    assert attempt.device_id == "dev-fcm"
    assert fcm.fake.issued == ["ya29.fake-1"]
    [message] = fcm.fake.messages
    assert message["token"] == "fcm-registration-token"
    assert message["notification"] == {"title": "Build finished", "body": "main is green again"}
    assert message["android"] == {"priority": "high", "ttl": "600s"}
    assert message["apns"] == {"headers": {"apns-priority": "10"}}


async def test_fcm_data_values_become_strings_and_reserved_keys_are_left_out(
    fcm: FcmRig, http_client: httpx.AsyncClient
) -> None:
    data = {"n": 3, "flag": False, "text": "hi", "nested": {"a": [1]}, "from": "x", "gcm.y": 1}
    push = Push("n-2", "t", "b", data=data, priority="low", ttl_s=0)

    attempt = await fcm_sender(fcm, http_client).send(FCM_DEVICE, push)

    assert attempt.outcome is Outcome.SENT, attempt.error
    [message] = fcm.fake.messages
    assert message["data"] == {
        "notification_id": "n-2",
        "n": "3",
        "flag": "false",
        "text": "hi",
        "nested": '{"a": [1]}',
    }
    assert message["android"] == {"priority": "normal", "ttl": "0s"}


async def test_fcm_reuses_its_access_token_and_fetches_another_after_a_401(
    fcm: FcmRig, http_client: httpx.AsyncClient
) -> None:
    sender = fcm_sender(fcm, http_client)
    assert (await sender.send(FCM_DEVICE, PUSH)).outcome is Outcome.SENT
    assert (await sender.send(FCM_DEVICE, PUSH)).outcome is Outcome.SENT
    assert fcm.fake.issued == ["ya29.fake-1"]

    fcm.fake.then(Reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}))
    rejected = await sender.send(FCM_DEVICE, PUSH)
    assert (rejected.outcome, rejected.code) == (Outcome.TRANSIENT, "UNAUTHENTICATED")

    assert (await sender.send(FCM_DEVICE, PUSH)).outcome is Outcome.SENT
    assert fcm.fake.issued == ["ya29.fake-1", "ya29.fake-2"]
    seen = [s.headers["authorization"] for s in fcm.fake.seen if s.path.endswith(":send")]
    assert seen[-1] == "Bearer ya29.fake-2"


def fcm_error(status: int, name: str, fcm_code: str | None = None, **extra: Any) -> Reply:
    details: list[dict[str, Any]] = []
    if fcm_code:
        details.append(
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}
        )
    if "field" in extra:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": extra["field"], "description": "invalid"}],
            }
        )
    message = extra.get("message", "failed")
    error = {"code": status, "message": message, "status": name, "details": details}
    return Reply(status, {"error": error}, extra.get("headers", {}))


@pytest.mark.parametrize(
    ("reply", "outcome", "code", "retry_after"),
    [
        (fcm_error(404, "NOT_FOUND", "UNREGISTERED"), Outcome.GONE, "UNREGISTERED", None),
        (
            fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", field="message.token"),
            Outcome.GONE,
            "INVALID_ARGUMENT",
            None,
        ),
        (
            fcm_error(400, "INVALID_ARGUMENT", message="The registration token is not valid"),
            Outcome.GONE,
            "INVALID_ARGUMENT",
            None,
        ),
        (
            fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", field="message.data"),
            Outcome.PERMANENT,
            "INVALID_ARGUMENT",
            None,
        ),
        (fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), Outcome.PERMANENT,
         "SENDER_ID_MISMATCH", None),
        (
            fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", headers={"Retry-After": "30"}),
            Outcome.TRANSIENT,
            "QUOTA_EXCEEDED",
            30.0,
        ),
        (fcm_error(503, "UNAVAILABLE", "UNAVAILABLE"), Outcome.TRANSIENT, "UNAVAILABLE", None),
        (Reply(502, b"<html>bad gateway</html>"), Outcome.TRANSIENT, "502", None),
    ],
)
async def test_fcm_classifies_provider_answers(
    fcm: FcmRig,
    http_client: httpx.AsyncClient,
    reply: Reply,
    outcome: Outcome,
    code: str,
    retry_after: float | None,
) -> None:
    fcm.fake.then(reply)

    attempt = await fcm_sender(fcm, http_client).send(FCM_DEVICE, PUSH)

    assert (attempt.outcome, attempt.code, attempt.retry_after_s) == (outcome, code, retry_after)
    assert attempt.device_id == "dev-fcm"
    assert attempt.error and attempt.error.startswith(f"HTTP {reply.status}")


async def test_fcm_timeout_is_transient(fcm: FcmRig, quick_client: httpx.AsyncClient) -> None:
    fcm.fake.then(HANG)

    attempt = await fcm_sender(fcm, quick_client).send(FCM_DEVICE, PUSH)

    assert (attempt.outcome, attempt.code) == (Outcome.TRANSIENT, "timeout")


async def test_fcm_refused_grant_is_permanent_and_sends_nothing(
    fcm: FcmRig, http_client: httpx.AsyncClient
) -> None:
    fcm.fake.token_replies.append(
        Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
    )

    attempt = await fcm_sender(fcm, http_client).send(FCM_DEVICE, PUSH)

    assert (attempt.outcome, attempt.code) == (Outcome.PERMANENT, "TOKEN")
    assert fcm.fake.messages == []


async def test_fcm_unreachable_token_endpoint_is_transient(
    fcm: FcmRig, http_client: httpx.AsyncClient
) -> None:
    account = json.loads(fcm.credentials_file.read_text())
    account["token_uri"] = "http://127.0.0.1:9/token"  # nothing listens on the discard port
    fcm.credentials_file.write_text(json.dumps(account))

    attempt = await fcm_sender(fcm, http_client).send(FCM_DEVICE, PUSH)

    assert (attempt.outcome, attempt.code) == (Outcome.TRANSIENT, "TOKEN")
    assert fcm.fake.seen == []


async def test_fcm_device_without_token_is_permanent(
    fcm: FcmRig, http_client: httpx.AsyncClient
) -> None:
    attempt = await fcm_sender(fcm, http_client).send(Device("d", Platform.FCM), PUSH)

    assert attempt.outcome is Outcome.PERMANENT
    assert fcm.fake.seen == []


# ---- APNs ---------------------------------------------------------------------------------


@dataclass
class ApnsRig:
    fake: FakeApns
    url: str
    now: list[float]
    key_pem: str
    trust: ssl.SSLContext

    def sender(self, timeout: float = 5.0) -> ApnsSender:
        return ApnsSender(
            self.key_pem,
            KEY_ID,
            TEAM_ID,
            TOPIC,
            self.url,
            verify=self.trust,
            timeout=timeout,
            clock=lambda: self.now[0],
        )


@pytest.fixture
async def apns(
    apns_key: ec.EllipticCurvePrivateKey, ca: trustme.CA, trust: ssl.SSLContext, tmp_path: Path
) -> AsyncIterator[ApnsRig]:
    now = [1_700_000_000.0]  # in the past: PyJWT refuses an iat in the future
    fake = FakeApns(apns_key.public_key(), KEY_ID, TEAM_ID, TOPIC, clock=lambda: now[0])
    async with running(fake, tls=(ca, tmp_path)) as url:
        yield ApnsRig(fake, url, now, pem(apns_key), trust)


@pytest.fixture
async def apns_sender(apns: ApnsRig) -> AsyncIterator[ApnsSender]:
    sender = apns.sender()
    yield sender
    await sender.close()


APNS_DEVICE = Device(id="dev-ios", platform=Platform.APNS, token=APNS_TOKEN)


async def test_apns_sends_over_http2_with_a_signed_provider_token(
    apns: ApnsRig, apns_sender: ApnsSender
) -> None:
    attempt = await apns_sender.send(APNS_DEVICE, PUSH)

    assert attempt.outcome is Outcome.SENT, attempt.error
    expected_id = str(stable_uuid("delivery-7:device"))
    assert attempt.provider_id == expected_id
    [seen] = apns.fake.seen
    assert seen.http_version == "2"
    assert seen.path == f"/3/device/{APNS_TOKEN}"
    assert seen.headers["apns-topic"] == TOPIC
    assert seen.headers["apns-push-type"] == "alert"
    assert seen.headers["apns-priority"] == "10"
    assert seen.headers["apns-expiration"] == str(int(apns.now[0]) + 600)
    assert seen.headers["apns-id"] == expected_id
    assert seen.json() == {
        "aps": {"alert": {"title": "Build finished", "body": "main is green again"}},
        "build": 42,
        "ok": True,
        "url": "https://ci.example.com/42",
        "notification_id": "n-1",
    }


async def test_apns_id_is_the_same_on_every_attempt_and_low_priority_is_5(
    apns: ApnsRig, apns_sender: ApnsSender
) -> None:
    push = Push("n-9", "t", "b", priority="medium", idempotency_key="delivery-9")
    apns.fake.then(Reply(503, {"reason": "ServiceUnavailable"}))

    first = await apns_sender.send(APNS_DEVICE, push)
    second = await apns_sender.send(APNS_DEVICE, push)

    assert (first.outcome, second.outcome) == (Outcome.TRANSIENT, Outcome.SENT)
    ids = {seen.headers["apns-id"] for seen in apns.fake.seen}
    assert ids == {str(stable_uuid("delivery-9"))}
    assert {seen.headers["apns-priority"] for seen in apns.fake.seen} == {"5"}


async def test_apns_reuses_its_token_for_50_minutes_then_makes_another(
    apns: ApnsRig, apns_sender: ApnsSender
) -> None:
    start = apns.now[0]
    for offset in (0, 60, TOKEN_MAX_AGE_S - 1):
        apns.now[0] = start + offset
        assert (await apns_sender.send(APNS_DEVICE, PUSH)).outcome is Outcome.SENT
    apns.now[0] = start + TOKEN_MAX_AGE_S
    assert (await apns_sender.send(APNS_DEVICE, PUSH)).outcome is Outcome.SENT

    tokens = apns.fake.tokens()
    assert tokens[0] == tokens[1] == tokens[2] != tokens[3]


async def test_apns_expired_provider_token_is_replaced(
    apns: ApnsRig, apns_sender: ApnsSender
) -> None:
    apns.fake.then(Reply(403, {"reason": "ExpiredProviderToken"}))
    rejected = await apns_sender.send(APNS_DEVICE, PUSH)
    accepted = await apns_sender.send(APNS_DEVICE, PUSH)

    assert (rejected.outcome, rejected.code) == (Outcome.TRANSIENT, "ExpiredProviderToken")
    assert accepted.outcome is Outcome.SENT
    first, second = apns.fake.tokens()
    assert first != second


@pytest.mark.parametrize(
    ("reply", "outcome", "code", "retry_after"),
    [
        (Reply(410, {"reason": "Unregistered", "timestamp": 1}), Outcome.GONE, "Unregistered",
         None),
        (Reply(400, {"reason": "BadDeviceToken"}), Outcome.GONE, "BadDeviceToken", None),
        (Reply(400, {"reason": "DeviceTokenNotForTopic"}), Outcome.GONE,
         "DeviceTokenNotForTopic", None),
        (Reply(400, {"reason": "BadCollapseId"}), Outcome.PERMANENT, "BadCollapseId", None),
        (Reply(403, {"reason": "InvalidProviderToken"}), Outcome.PERMANENT,
         "InvalidProviderToken", None),
        (Reply(429, {"reason": "TooManyRequests"}, {"Retry-After": "120"}), Outcome.TRANSIENT,
         "TooManyRequests", 120.0),
        (Reply(503, {"reason": "ServiceUnavailable"}), Outcome.TRANSIENT, "ServiceUnavailable",
         None),
        (Reply(500, b"oops"), Outcome.TRANSIENT, "500", None),
    ],
)
async def test_apns_classifies_provider_answers(
    apns: ApnsRig,
    apns_sender: ApnsSender,
    reply: Reply,
    outcome: Outcome,
    code: str,
    retry_after: float | None,
) -> None:
    apns.fake.then(reply)

    attempt = await apns_sender.send(APNS_DEVICE, PUSH)

    assert (attempt.outcome, attempt.code, attempt.retry_after_s) == (outcome, code, retry_after)
    assert attempt.device_id == "dev-ios"


async def test_apns_timeout_is_transient(apns: ApnsRig) -> None:
    apns.fake.then(HANG)
    sender = apns.sender(timeout=QUICK)
    try:
        attempt = await sender.send(APNS_DEVICE, PUSH)
    finally:
        await sender.close()

    assert (attempt.outcome, attempt.code) == (Outcome.TRANSIENT, "timeout")


async def test_apns_refuses_a_server_its_ca_does_not_vouch_for(apns: ApnsRig) -> None:
    sender = ApnsSender(apns.key_pem, KEY_ID, TEAM_ID, TOPIC, apns.url)  # system CAs only
    try:
        attempt = await sender.send(APNS_DEVICE, PUSH)
    finally:
        await sender.close()

    assert (attempt.outcome, attempt.code) == (Outcome.TRANSIENT, "network")
    assert apns.fake.seen == []


async def test_apns_long_body_is_cut_to_fit_4kb(
    apns: ApnsRig, apns_sender: ApnsSender
) -> None:
    push = Push("n-long", "Title", "é" * 5000, idempotency_key="k")

    attempt = await apns_sender.send(APNS_DEVICE, push)

    assert attempt.outcome is Outcome.SENT, attempt.error
    [seen] = apns.fake.seen
    assert len(seen.body) <= 4096
    payload = seen.json()
    assert payload["truncated"] is True
    assert payload["aps"]["alert"]["body"].endswith(ELLIPSIS)


async def test_apns_device_without_token_is_permanent(
    apns: ApnsRig, apns_sender: ApnsSender
) -> None:
    attempt = await apns_sender.send(Device("d", Platform.APNS), PUSH)

    assert attempt.outcome is Outcome.PERMANENT
    assert apns.fake.seen == []


def test_apns_rejects_a_key_that_is_not_ec(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="EC"):
        ApnsSender(pem(rsa_key), KEY_ID, TEAM_ID, TOPIC)


# ---- Web Push -----------------------------------------------------------------------------


@dataclass
class WebPushRig:
    fake: FakePushService
    key: ec.EllipticCurvePrivateKey

    def sender(self, client: httpx.AsyncClient, **options: Any) -> WebPushSender:
        options.setdefault("allow_private_targets", True)
        return WebPushSender(self.key, SUBJECT, client, **options)

    def device(self, name: str = "sub-1") -> Device:
        endpoint, browser = self.fake.subscribe(name)
        return Device(
            id=f"dev-{name}",
            platform=Platform.WEBPUSH,
            endpoint=endpoint,
            p256dh=browser.p256dh,
            auth=browser.auth,
        )


@pytest.fixture
async def webpush(vapid_key: ec.EllipticCurvePrivateKey) -> AsyncIterator[WebPushRig]:
    fake = FakePushService(vapid_public_key(vapid_key))
    async with running(fake) as url:
        fake.origin = url
        yield WebPushRig(fake, vapid_key)


async def test_webpush_encrypts_for_the_subscription_and_signs_with_vapid(
    webpush: WebPushRig, http_client: httpx.AsyncClient
) -> None:
    device = webpush.device()

    attempt = await webpush.sender(http_client).send(device, PUSH)

    assert attempt.outcome is Outcome.SENT, attempt.error
    assert attempt.provider_id == f"{webpush.fake.origin}/m/1"
    assert webpush.fake.messages() == [
        {
            "notification_id": "n-1",
            "title": "Build finished",
            "body": "main is green again",
            "data": {"build": 42, "ok": True, "url": "https://ci.example.com/42"},
            "priority": "high",
        }
    ]
    [seen] = webpush.fake.seen
    assert (seen.headers["ttl"], seen.headers["urgency"]) == ("600", "high")


@pytest.mark.parametrize(
    ("priority", "urgency"),
    [("critical", "high"), ("high", "high"), ("medium", "normal"), ("low", "low")],
)
async def test_webpush_urgency_follows_priority(
    webpush: WebPushRig, http_client: httpx.AsyncClient, priority: str, urgency: str
) -> None:
    push = Push("n", "t", "b", priority=priority)

    assert (await webpush.sender(http_client).send(webpush.device(), push)).outcome is (
        Outcome.SENT
    )
    assert webpush.fake.seen[0].headers["urgency"] == urgency


async def test_webpush_reuses_its_vapid_signature_per_origin(
    webpush: WebPushRig, http_client: httpx.AsyncClient
) -> None:
    sender = webpush.sender(http_client)
    for name in ("a", "b"):
        assert (await sender.send(webpush.device(name), PUSH)).outcome is Outcome.SENT

    first, second = (seen.headers["authorization"] for seen in webpush.fake.seen)
    assert first == second


async def test_webpush_cuts_a_payload_too_large_for_4kb(
    webpush: WebPushRig, http_client: httpx.AsyncClient
) -> None:
    long_body = "Grüße aus der Ferne. " * 400
    push = Push("n-big", "Postcard", long_body, data={"k": "v"})

    attempt = await webpush.sender(http_client).send(webpush.device(), push)

    assert attempt.outcome is Outcome.SENT, attempt.error
    [plaintext] = webpush.fake.plaintexts
    assert len(plaintext) <= PLAINTEXT_LIMIT
    [message] = webpush.fake.messages()
    assert message["truncated"] is True
    assert message["title"] == "Postcard"
    assert message["data"] == {"k": "v"}
    assert message["body"].endswith(ELLIPSIS)
    assert long_body.startswith(message["body"].removesuffix(ELLIPSIS))


@pytest.mark.parametrize(
    ("reply", "outcome", "retry_after"),
    [
        (Reply(410, b"subscription expired"), Outcome.GONE, None),
        (Reply(404, b"not found"), Outcome.GONE, None),
        (Reply(429, b"slow down", {"Retry-After": "45"}), Outcome.TRANSIENT, 45.0),
        (Reply(503, b"unavailable"), Outcome.TRANSIENT, None),
        (Reply(413, b"too large"), Outcome.PERMANENT, None),
        (Reply(403, b"vapid key mismatch"), Outcome.PERMANENT, None),
    ],
)
async def test_webpush_classifies_provider_answers(
    webpush: WebPushRig,
    http_client: httpx.AsyncClient,
    reply: Reply,
    outcome: Outcome,
    retry_after: float | None,
) -> None:
    webpush.fake.then(reply)

    attempt = await webpush.sender(http_client).send(webpush.device(), PUSH)

    assert (attempt.outcome, attempt.code) == (outcome, str(reply.status))
    assert attempt.retry_after_s == retry_after


@pytest.mark.parametrize(("entry", "host", "admitted"), [
    ("googleapis.com", "fcm.googleapis.com", True),  # the documented example
    ("googleapis.com", "googleapis.com", True),
    ("*.googleapis.com", "fcm.googleapis.com", True),
    (".googleapis.com", "fcm.googleapis.com", True),
    ("fcm.googleapis.com", "FCM.googleapis.com.", True),
    ("googleapis.com", "evilgoogleapis.com", False),
    ("fcm.googleapis.com", "googleapis.com", False),
])
async def test_webpush_sends_to_every_host_registration_admits_and_to_no_other(
    vapid_key: ec.EllipticCurvePrivateKey, entry: str, host: str, admitted: bool
) -> None:
    fake = FakePushService(vapid_public_key(vapid_key))
    fake.origin = f"https://{host}"
    endpoint, browser = fake.subscribe("phone")
    try:
        await check_target_url(endpoint, allow_private=True, allowed_hosts=[entry])
        registered = True
    except ValidationFailed:
        registered = False
    # The push service is in process (any host reaches it): the test is about the rule.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake)) as client:
        sender = WebPushSender(vapid_key, SUBJECT, client, allowed_hosts=[entry],
                               allow_private_targets=True)
        attempt = await sender.send(Device("dev-1", Platform.WEBPUSH, endpoint=endpoint,
                                           p256dh=browser.p256dh, auth=browser.auth), PUSH)
    assert registered is admitted
    assert attempt.outcome is (Outcome.SENT if admitted else Outcome.PERMANENT), attempt.error
    assert (attempt.code == "TARGET") is not admitted


async def test_webpush_timeout_is_transient(
    webpush: WebPushRig, quick_client: httpx.AsyncClient
) -> None:
    webpush.fake.then(HANG)

    attempt = await webpush.sender(quick_client).send(webpush.device(), PUSH)

    assert (attempt.outcome, attempt.code) == (Outcome.TRANSIENT, "timeout")


@pytest.mark.parametrize(
    ("endpoint", "options", "error"),
    [
        ("http://127.0.0.1:9/push/x", {"allow_private_targets": False}, "https"),
        ("https://127.0.0.1:9/push/x", {"allow_private_targets": False}, "private"),
        ("https://localhost:9/push/x", {"allow_private_targets": False}, "private"),
        ("https://[::1]:9/push/x", {"allow_private_targets": False}, "private"),
        ("https://evil.example.net/push/x", {"allowed_hosts": ["push.example.com"]},
         "not allowed"),
        ("https://push.example.com.evil.net/p", {"allowed_hosts": ["*.example.com"]},
         "not allowed"),
        ("ftp://push.example.com/p", {}, "https"),
    ],
)
async def test_webpush_refuses_endpoints_outside_the_allowed_targets(
    webpush: WebPushRig,
    http_client: httpx.AsyncClient,
    endpoint: str,
    options: dict[str, Any],
    error: str,
) -> None:
    device = webpush.device()
    device = Device(device.id, device.platform, None, endpoint, device.p256dh, device.auth)

    attempt = await webpush.sender(http_client, **options).send(device, PUSH)

    assert (attempt.outcome, attempt.code) == (Outcome.PERMANENT, "TARGET")
    assert attempt.error and error in attempt.error


async def test_webpush_allowed_host_suffix_matches_subdomains(
    webpush: WebPushRig, http_client: httpx.AsyncClient
) -> None:
    sender = webpush.sender(http_client, allowed_hosts=["*.0.0.1", "other.example"])

    assert (await sender.send(webpush.device(), PUSH)).outcome is Outcome.SENT


@pytest.mark.parametrize(
    ("p256dh", "auth"),
    [("not base64!", "AAAA"), (b64url(b"\x04" + b"\x01" * 64), b64url(b"0" * 16)), (None, "x")],
)
async def test_webpush_unusable_subscription_keys_are_permanent(
    webpush: WebPushRig, http_client: httpx.AsyncClient, p256dh: str | None, auth: str
) -> None:
    endpoint, _ = webpush.fake.subscribe("broken")
    device = Device("dev-broken", Platform.WEBPUSH, None, endpoint, p256dh, auth)

    attempt = await webpush.sender(http_client).send(device, PUSH)

    assert attempt.outcome is Outcome.PERMANENT
    assert webpush.fake.seen == []


@pytest.mark.parametrize(
    "encode",
    [
        lambda key: b64url(key.private_numbers().private_value.to_bytes(32, "big")),
        lambda key: key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode(),
        lambda key: b64url(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
    ],
    ids=["raw", "pem", "der"],
)
def test_vapid_private_key_formats_give_the_same_public_key(
    vapid_key: ec.EllipticCurvePrivateKey, encode: Any
) -> None:
    key = load_vapid_key(encode(vapid_key))

    public = vapid_public_key(key)
    raw = public.encode() + b"=" * (-len(public) % 4)
    assert len(base64.urlsafe_b64decode(raw)) == 65
    assert public == vapid_public_key(vapid_key)


def test_vapid_key_must_be_p256(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="P-256"):
        load_vapid_key(pem(rsa_key))


def test_vapid_subject_must_be_mailto_or_https(
    vapid_key: ec.EllipticCurvePrivateKey,
) -> None:
    with pytest.raises(ValueError, match="VAPID_SUBJECT"):
        WebPushSender(vapid_key, "ops@example.com", httpx.AsyncClient())


# ---- Internal push service ----------------------------------------------------------------


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[FakePushGateway, str]]:
    fake = FakePushGateway("gw-secret")
    async with running(fake) as url:
        yield fake, f"{url}/v1/push"


async def test_push_service_gets_the_documented_body_with_key_and_idempotency_key(
    gateway: tuple[FakePushGateway, str], http_client: httpx.AsyncClient
) -> None:
    fake, url = gateway
    sender = HttpPushSender(url, "gw-secret", http_client)
    fake.then(Reply(503, b"busy", {"Retry-After": "5"}))

    first = await sender.send(APNS_DEVICE, PUSH)
    second = await sender.send(APNS_DEVICE, PUSH)

    assert (first.outcome, first.retry_after_s) == (Outcome.TRANSIENT, 5.0)
    assert (second.outcome, second.provider_id) == (Outcome.SENT, "gw-2")
    assert {seen.headers["idempotency-key"] for seen in fake.seen} == {"delivery-7:device"}
    assert fake.seen[1].json() == {
        "device": {"id": "dev-ios", "platform": "apns", "token": APNS_TOKEN},
        "notification_id": "n-1",
        "title": "Build finished",
        "body": "main is green again",
        "data": {"build": 42, "ok": True, "url": "https://ci.example.com/42"},
        "priority": "high",
        "ttl": 600,
        "idempotency_key": "delivery-7:device",
    }


async def test_push_service_carries_web_push_subscriptions(
    gateway: tuple[FakePushGateway, str], http_client: httpx.AsyncClient
) -> None:
    fake, url = gateway
    device = Device("dev-w", Platform.WEBPUSH, None, "https://push.example/x", "pk", "au")

    attempt = await HttpPushSender(url, "gw-secret", http_client).send(device, PUSH)

    assert attempt.outcome is Outcome.SENT, attempt.error
    assert fake.seen[0].json()["device"] == {
        "id": "dev-w",
        "platform": "webpush",
        "subscription": {
            "endpoint": "https://push.example/x",
            "keys": {"p256dh": "pk", "auth": "au"},
        },
    }


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        (Reply(410, {"error": "gone"}), Outcome.GONE),
        (Reply(429, b"", {"Retry-After": "7"}), Outcome.TRANSIENT),
        (Reply(500, b"boom"), Outcome.TRANSIENT),
        (Reply(422, {"error": "bad"}), Outcome.PERMANENT),
    ],
)
async def test_push_service_answers_are_classified(
    gateway: tuple[FakePushGateway, str],
    http_client: httpx.AsyncClient,
    reply: Reply,
    outcome: Outcome,
) -> None:
    fake, url = gateway
    fake.then(reply)

    attempt = await HttpPushSender(url, "gw-secret", http_client).send(FCM_DEVICE, PUSH)

    assert (attempt.outcome, attempt.code) == (outcome, str(reply.status))


async def test_push_service_wrong_key_is_permanent_and_refused_connection_transient(
    gateway: tuple[FakePushGateway, str], http_client: httpx.AsyncClient
) -> None:
    _, url = gateway
    wrong = await HttpPushSender(url, "nope", http_client).send(FCM_DEVICE, PUSH)
    assert (wrong.outcome, wrong.code) == (Outcome.PERMANENT, "401")

    closed = await HttpPushSender("http://127.0.0.1:9/push", "k", http_client).send(
        FCM_DEVICE, PUSH
    )
    assert (closed.outcome, closed.code) == (Outcome.TRANSIENT, "network")
    assert closed.device_id == "dev-fcm"


# ---- Router and factory -------------------------------------------------------------------


def settings_for(**values: Any) -> Settings:
    return Settings(jwt_secret="x" * 32, **values)


@pytest.fixture
def everything(
    fcm: FcmRig,
    apns: ApnsRig,
    webpush: WebPushRig,
    vapid_key: ec.EllipticCurvePrivateKey,
    tmp_path: Path,
) -> Iterator[Settings]:
    key_file = tmp_path / "AuthKey.p8"
    key_file.write_text(apns.key_pem)
    yield settings_for(
        fcm_credentials_file=str(fcm.credentials_file),
        fcm_endpoint=fcm.url,
        apns_key_file=str(key_file),
        apns_key_id=KEY_ID,
        apns_team_id=TEAM_ID,
        apns_topic=TOPIC,
        apns_endpoint=apns.url,
        vapid_private_key=pem(vapid_key),
        vapid_subject=SUBJECT,
        allow_private_targets=True,
    )


async def test_router_sends_each_platform_to_its_provider(
    everything: Settings,
    fcm: FcmRig,
    apns: ApnsRig,
    webpush: WebPushRig,
    http_client: httpx.AsyncClient,
) -> None:
    # The factory's APNs sender uses the real clock, while the fake's stands still where it
    # is set: a minute ahead, so a token made a second boundary later is not "from the
    # future" (ExpiredProviderToken) on a slow run.
    apns.now[0] = time.time() + 60
    router = build_push_senders(everything, http_client, apns_verify=apns.trust)
    try:
        attempts = [
            await router.send(device, PUSH)
            for device in (FCM_DEVICE, APNS_DEVICE, webpush.device())
        ]
    finally:
        await router.close()

    assert [a.outcome for a in attempts] == [Outcome.SENT] * 3, [a.error for a in attempts]
    assert [a.device_id for a in attempts] == ["dev-fcm", "dev-ios", "dev-sub-1"]
    assert (len(fcm.fake.messages), len(apns.fake.seen), len(webpush.fake.plaintexts)) == (
        1,
        1,
        1,
    )
    assert all(router.configured(platform) for platform in Platform)


async def test_router_uses_the_push_service_for_platforms_without_a_provider(
    fcm: FcmRig,
    gateway: tuple[FakePushGateway, str],
    http_client: httpx.AsyncClient,
) -> None:
    fake, url = gateway
    settings = settings_for(
        fcm_credentials_file=str(fcm.credentials_file),
        fcm_endpoint=fcm.url,
        push_service_url=url,
        push_service_api_key="gw-secret",
    )
    router = build_push_senders(settings, http_client)

    to_fcm = await router.send(FCM_DEVICE, PUSH)
    to_gateway = await router.send(APNS_DEVICE, PUSH)
    await router.close()

    assert (to_fcm.outcome, to_gateway.outcome) == (Outcome.SENT, Outcome.SENT)
    assert len(fcm.fake.messages) == 1
    assert [seen.json()["device"]["platform"] for seen in fake.seen] == ["apns"]


async def test_router_without_a_provider_answers_permanent(
    http_client: httpx.AsyncClient,
) -> None:
    router = build_push_senders(settings_for(), http_client)

    attempt = await router.send(APNS_DEVICE, PUSH)

    assert attempt.outcome is Outcome.PERMANENT
    assert attempt.error == "no provider configured for apns"
    assert attempt.device_id == "dev-ios"
    assert not router.configured(Platform.APNS)
    await router.close()


async def test_router_closes_each_sender_once() -> None:
    closed: list[str] = []

    class Recorder:
        def __init__(self, name: str) -> None:
            self.name = name

        async def send(self, device: Device, push: Push) -> Any:
            raise AssertionError("not sent")

        async def close(self) -> None:
            closed.append(self.name)

    shared = Recorder("shared")
    router = PushRouter({Platform.FCM: shared, Platform.APNS: shared}, Recorder("fallback"))

    await router.close()

    assert sorted(closed) == ["fallback", "shared"]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"apns_key_file": "k.p8", "apns_key_id": KEY_ID}, "APNS_TEAM_ID, APNS_TOPIC"),
        (
            {"apns_key_file": "missing.p8", "apns_key_id": KEY_ID, "apns_team_id": TEAM_ID,
             "apns_topic": TOPIC},
            "APNS_KEY_FILE",
        ),
        ({"fcm_credentials_file": "missing.json"}, "FCM_CREDENTIALS_FILE"),
        ({"vapid_private_key": "not a key", "vapid_subject": SUBJECT}, "VAPID_PRIVATE_KEY"),
        ({"vapid_private_key": b64url(b"k" * 32), "vapid_subject": "me"}, "VAPID_SUBJECT"),
    ],
)
def test_factory_refuses_broken_provider_settings_naming_the_variable(
    values: dict[str, str], named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConfigError, match=named):
        build_push_senders(settings_for(**values), httpx.AsyncClient())


def test_public_vapid_key_is_the_uncompressed_point_in_base64url(
    vapid_key: ec.EllipticCurvePrivateKey,
) -> None:
    raw = vapid_key.private_numbers().private_value.to_bytes(32, "big")
    settings = settings_for(vapid_private_key=b64url(raw), vapid_subject=SUBJECT)

    key = public_vapid_key(settings)

    point = vapid_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert key == b64url(point)
    assert public_vapid_key(settings_for()) is None


# ---- Fitting a payload --------------------------------------------------------------------


def encode_plain(push: Push, truncated: bool) -> bytes:
    return json.dumps(
        {"t": push.title, "b": push.body, "d": dict(push.data), "x": truncated},
        ensure_ascii=False,
    ).encode()


@pytest.mark.parametrize(
    ("title", "body", "data", "limit", "expect"),
    [
        ("T", "short", {"k": 1}, 200, ("T", "short", {"k": 1}, False)),
        ("T", "b" * 300, {"k": 1}, 200, ("T", None, {"k": 1}, True)),
        ("T", "b" * 300, {"k": "v" * 300}, 200, ("T", None, {}, True)),
        ("t" * 300, "b" * 300, {}, 100, (None, "", {}, True)),
        ("ü" * 100, "", {}, 80, (None, "", {}, True)),
    ],
)
def test_fit_push_cuts_body_then_data_then_title(
    title: str,
    body: str,
    data: dict[str, Any],
    limit: int,
    expect: tuple[str | None, str | None, dict[str, Any], bool],
) -> None:
    push = Push("n", title, body, data=data)

    out = fit_push(push, encode_plain, limit)

    assert len(out) <= limit
    doc = json.loads(out)
    want_title, want_body, want_data, want_flag = expect
    assert (doc["d"], doc["x"]) == (want_data, want_flag)
    for got, want, original in ((doc["t"], want_title, title), (doc["b"], want_body, body)):
        if want is not None:
            assert got == want
        else:
            assert got.endswith(ELLIPSIS)
            assert original.startswith(got.removesuffix(ELLIPSIS))


def test_stable_uuid_depends_on_the_key_alone() -> None:
    assert stable_uuid("a") == stable_uuid("a") != stable_uuid("b")
    assert isinstance(stable_uuid("a"), uuid.UUID)
