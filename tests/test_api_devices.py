"""`/api/devices` and `/api/push/vapid-public-key`: registration and its checks, moving a
token between users, ownership, and what the push workers read (`active_devices`,
`disable`)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import RunningServer, make_settings, start_server
from tidings.config.settings import Settings
from tidings.container import build_services
from tidings.delivery.push.router import ConfigError
from tidings.domain.device import Platform
from tidings.domain.model import utcnow
from tidings.store import devices as device_store

pytestmark = pytest.mark.both_databases


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962,
                                         serialization.PublicFormat.UncompressedPoint)


VAPID = ec.generate_private_key(ec.SECP256R1())
VAPID_RAW = b64(VAPID.private_numbers().private_value.to_bytes(32, "big"))
BROWSER = point(ec.generate_private_key(ec.SECP256R1()))
AUTH = bytes(range(16))
ENDPOINT = "https://push.example.com/wpush/v2/abc123"


def webpush(endpoint: str = ENDPOINT, p256dh: str = b64(BROWSER),
            auth: str = b64(AUTH)) -> dict[str, Any]:
    return {"platform": "webpush",
            "subscription": {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}}


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Endpoints name hosts that do not resolve here: host checks are off but for the tests
    # that build their own server to see them refuse.
    return make_settings(database_url, allow_private_targets=True,
                         vapid_private_key=VAPID_RAW, vapid_subject="mailto:ops@example.com")


@pytest.fixture
async def strict_server(database_url: str) -> AsyncIterator[RunningServer]:
    running = await start_server(make_settings(
        database_url, webpush_allowed_hosts=["push.example.com"]))
    try:
        yield running
    finally:
        await running.stop()


async def test_register_fcm_device_answers_201_and_lists_it(server: RunningServer) -> None:
    async with server.http("alice") as http:
        created = await http.post("/api/devices", json={"platform": "fcm", "token": "tok:1"})
        listed = await http.get("/api/devices")
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "platform", "created_at", "disabled_at"}
    assert body["platform"] == "fcm" and body["disabled_at"] is None
    assert listed.json() == {"items": [body]}


async def test_register_webpush_and_apns(server: RunningServer) -> None:
    async with server.http("alice") as http:
        web = await http.post("/api/devices", json=webpush())
        apns = await http.post("/api/devices", json={"platform": "apns", "token": "ab" * 32})
    assert (web.status_code, apns.status_code) == (201, 201)
    async with server.services.db.begin() as conn:
        found = await device_store.active_devices(conn, ["alice"], 20)
    by_platform = {device.platform: device for device in found["alice"]}
    assert by_platform[Platform.WEBPUSH].endpoint == ENDPOINT
    assert by_platform[Platform.WEBPUSH].p256dh == b64(BROWSER)
    assert by_platform[Platform.WEBPUSH].auth == b64(AUTH)
    assert by_platform[Platform.APNS].token == "ab" * 32


async def test_same_token_again_moves_the_device_and_answers_200(server: RunningServer) -> None:
    async with server.http("alice") as alice, server.http("bob") as bob:
        first = (await alice.post("/api/devices", json={"platform": "fcm", "token": "t1"}))
        again = await bob.post("/api/devices", json={"platform": "fcm", "token": "t1"})
        alice_list = (await alice.get("/api/devices")).json()["items"]
        bob_list = (await bob.get("/api/devices")).json()["items"]
        gone = await alice.delete(f"/api/devices/{first.json()['id']}")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert alice_list == [] and [d["id"] for d in bob_list] == [first.json()["id"]]
    assert gone.status_code == 404


async def test_same_token_on_another_platform_is_another_device(server: RunningServer) -> None:
    async with server.http("alice") as http:
        fcm = await http.post("/api/devices", json={"platform": "fcm", "token": "same"})
        apns = await http.post("/api/devices", json={"platform": "apns", "token": "same"})
    assert (fcm.status_code, apns.status_code) == (201, 201)
    assert fcm.json()["id"] != apns.json()["id"]


async def test_registering_again_re_enables_and_updates_keys(server: RunningServer) -> None:
    async with server.http("alice") as http:
        device = (await http.post("/api/devices", json=webpush())).json()
        async with server.services.db.begin() as conn:
            assert await device_store.disable(conn, device["id"], "gone (410)", utcnow())
            assert not await device_store.disable(conn, device["id"], "again", utcnow())
            assert await device_store.active_devices(conn, ["alice"], 20) == {}
        disabled = (await http.get("/api/devices")).json()["items"][0]
        new_auth = b64(b"\x01" * 16)
        again = await http.post("/api/devices", json=webpush(auth=new_auth))
    assert disabled["disabled_at"] is not None
    assert again.status_code == 200 and again.json()["disabled_at"] is None
    async with server.services.db.begin() as conn:
        (active,) = (await device_store.active_devices(conn, ["alice"], 20))["alice"]
    assert active.id == device["id"] and active.auth == new_auth


async def test_service_registers_for_a_named_user(server: RunningServer) -> None:
    async with server.http("svc", "service") as svc, server.http("carol") as carol:
        created = await svc.post("/api/devices",
                                 json={"platform": "fcm", "token": "c1", "user_id": "carol"})
        carols = (await carol.get("/api/devices")).json()["items"]
        own = (await svc.get("/api/devices")).json()["items"]
    assert created.status_code == 201
    assert [d["id"] for d in carols] == [created.json()["id"]] and own == []


async def test_user_cannot_register_for_someone_else(server: RunningServer) -> None:
    async with server.http("alice") as http:
        other = await http.post("/api/devices",
                                json={"platform": "fcm", "token": "x", "user_id": "bob"})
        self_named = await http.post("/api/devices",
                                     json={"platform": "fcm", "token": "y", "user_id": "alice"})
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "forbidden"
    assert self_named.status_code == 201


async def test_delete_own_device_204_others_404(server: RunningServer) -> None:
    async with server.http("alice") as alice, server.http("bob") as bob:
        device = (await alice.post("/api/devices", json={"platform": "fcm", "token": "d"})).json()
        by_bob = await bob.delete(f"/api/devices/{device['id']}")
        by_alice = await alice.delete(f"/api/devices/{device['id']}")
        twice = await alice.delete(f"/api/devices/{device['id']}")
        unknown = await alice.delete("/api/devices/not-a-device")
        nul = await alice.delete("/api/devices/a%00b")
        listed = (await alice.get("/api/devices")).json()
    assert by_bob.status_code == 404
    assert by_alice.status_code == 204 and by_alice.content == b""
    assert twice.status_code == 404 and unknown.status_code == 404 and nul.status_code == 404
    assert listed == {"items": []}


@pytest.mark.parametrize(("body", "field"), [
    ({"platform": "sms", "token": "t"}, "platform"),
    ({"token": "t"}, "platform"),
    ({"platform": "fcm"}, "token"),
    ({"platform": "fcm", "token": ""}, "token"),
    ({"platform": "fcm", "token": "has space"}, "token"),
    ({"platform": "fcm", "token": "new\nline"}, "token"),
    ({"platform": "apns", "token": "é"}, "token"),
    ({"platform": "fcm", "token": "x" * 4097}, "token"),
    ({"platform": "fcm", "token": 12}, "token"),
    ({**webpush(), "platform": "fcm"}, "subscription"),
    ({"platform": "webpush"}, "subscription"),
    ({**webpush(), "token": "t"}, "token"),
    (webpush(p256dh=b64(BROWSER[:33])), "subscription.keys.p256dh"),
    (webpush(p256dh=b64(b"\x04" + b"\x00" * 64)), "subscription.keys.p256dh"),
    (webpush(p256dh="not base64!"), "subscription.keys.p256dh"),
    (webpush(p256dh="AAAAA"), "subscription.keys.p256dh"),
    (webpush(auth=b64(b"\x00" * 15)), "subscription.keys.auth"),
    (webpush(auth="a+b/"), "subscription.keys.auth"),
    (webpush(endpoint=""), "subscription.endpoint"),
    (webpush(endpoint="ftp://push.example.com/x"), "subscription.endpoint"),
    (webpush(endpoint="https://"), "subscription.endpoint"),
    (webpush(endpoint="https://push.example.com/a b"), "subscription.endpoint"),
    (webpush(endpoint="https://push.example.com/\u0000"), "subscription.endpoint"),
    (webpush(endpoint="https://push.example.com/\ud800"), "subscription.endpoint"),
    ({"platform": "webpush", "subscription": {"endpoint": ENDPOINT}}, "subscription.keys"),
    ({"platform": "fcm", "token": "t", "user_id": ""}, "user_id"),
    ({"platform": "fcm", "token": "t", "colour": "red"}, "colour"),
])
async def test_bad_registration_answers_422_naming_the_field(
    server: RunningServer, body: dict[str, Any], field: str
) -> None:
    async with server.http("alice") as http:
        # Encoded here: httpx would refuse the lone surrogates some cases carry.
        response = await http.post("/api/devices", content=json.dumps(body),
                                    headers={"Content-Type": "application/json"})
        listed = (await http.get("/api/devices")).json()
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert listed == {"items": []}


@pytest.mark.parametrize("endpoint", [
    "https://127.0.0.1/push",  # loopback: private targets are off here
    "https://10.0.0.8/push",
    "https://evil.example.net/push",  # not under WEBPUSH_ALLOWED_HOSTS
    "https://push.example.com.evil.net/push",
])
async def test_endpoints_outside_the_allowed_targets_are_refused(
    strict_server: RunningServer, endpoint: str
) -> None:
    body = webpush(endpoint=endpoint)
    async with strict_server.http("alice") as http:
        response = await http.post("/api/devices", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "subscription.endpoint"


async def test_vapid_public_key_is_the_configured_keys(server: RunningServer) -> None:
    async with server.http() as http:
        response = await http.get("/api/push/vapid-public-key")
    assert response.status_code == 200
    assert response.json() == {"public_key": b64(point(VAPID))}


async def test_vapid_public_key_is_null_without_web_push(strict_server: RunningServer) -> None:
    # A state of the server, not a missing resource: the inbox page asks it on every
    # visit, and a 404 would be logged as an error by the browser each time.
    async with strict_server.http() as http:
        response = await http.get("/api/push/vapid-public-key")
    assert response.status_code == 200
    assert response.json() == {"public_key": None}


def test_an_unreadable_vapid_key_stops_start_up_naming_the_setting(database_url: str) -> None:
    with pytest.raises(ConfigError, match="VAPID_PRIVATE_KEY"):
        build_services(make_settings(database_url, vapid_private_key="garbage",
                                     vapid_subject="mailto:ops@example.com"))


async def test_devices_need_a_token(server: RunningServer) -> None:
    async with server.http() as http:
        listed = await http.get("/api/devices")
        created = await http.post("/api/devices", json={"platform": "fcm", "token": "t"})
    assert (listed.status_code, created.status_code) == (401, 401)


async def test_active_devices_of_many_users_skip_disabled(server: RunningServer) -> None:
    async with server.http("svc", "service") as http:
        ids = {}
        for user, token in (("u1", "a"), ("u1", "b"), ("u2", "c"), ("u3", "d")):
            created = await http.post("/api/devices",
                                      json={"platform": "fcm", "token": token, "user_id": user})
            ids[token] = created.json()["id"]
    async with server.services.db.begin() as conn:
        await device_store.disable(conn, ids["d"], "unregistered", utcnow())
        found = await device_store.active_devices(conn, ["u1", "u2", "u3", "nobody"], 20)
    assert {user: [d.token for d in devices] for user, devices in found.items()} == {
        "u1": ["a", "b"], "u2": ["c"]}


@pytest.fixture
async def capped(database_url: str) -> AsyncIterator[RunningServer]:
    running = await start_server(make_settings(database_url, max_devices_per_user=3))
    try:
        yield running
    finally:
        await running.stop()


async def test_registering_past_the_cap_disables_the_least_recently_registered(
    capped: RunningServer,
) -> None:
    async with capped.http("bob") as bob:
        assert (await bob.post("/api/devices", json={"platform": "fcm",
                                                     "token": "bob:1"})).status_code == 201
    ids: dict[str, str] = {}
    async with capped.http("alice") as http:
        for n in range(1, 6):
            created = await http.post("/api/devices", json={"platform": "fcm",
                                                            "token": f"tok:{n}"})
            assert created.status_code == 201, created.text
            ids[created.json()["id"]] = f"tok:{n}"
        enabled = {ids[d["id"]] for d in (await http.get("/api/devices")).json()["items"]
                   if d["disabled_at"] is None}
        assert enabled == {"tok:3", "tok:4", "tok:5"}
        # Registered again, the oldest counts as the newest: now tok:3 goes.
        again = await http.post("/api/devices", json={"platform": "fcm", "token": "tok:1"})
        assert again.status_code == 200 and again.json()["disabled_at"] is None
        enabled = {ids[d["id"]] for d in (await http.get("/api/devices")).json()["items"]
                   if d["disabled_at"] is None}
    assert enabled == {"tok:1", "tok:4", "tok:5"}
    async with capped.http("bob") as bob:
        (device,) = (await bob.get("/api/devices")).json()["items"]
    assert device["disabled_at"] is None  # another user's devices are not counted
