"""Push delivery end to end through the queue, to a loopback push service that checks the
documented request: every active device is tried, a retry goes only to the devices that
failed transiently, and a device the provider calls gone is disabled at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import RunningServer, make_settings, start_server
from tests.pushfakes.server import Reply, running
from tests.pushfakes.service import FakePushGateway
from tidings.domain.device import NewDevice, Platform
from tidings.domain.model import utcnow
from tidings.store import devices as device_store

pytestmark = pytest.mark.both_databases

NOTE = {"type": "build", "title": "Build finished", "message": "main is green",
        "media": ["push"], "priority": "high"}


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[FakePushGateway, str]]:
    fake = FakePushGateway("gw-secret")
    async with running(fake) as url:
        yield fake, f"{url}/v1/push"


@pytest.fixture
async def pusher(database_url: str, gateway: tuple[FakePushGateway, str]
                 ) -> AsyncIterator[RunningServer]:
    _, url = gateway
    settings = make_settings(database_url, push_service_url=url,
                             push_service_api_key="gw-secret", retry_delays_ms=[50, 50],
                             max_retry_attempts=2)
    running_server = await start_server(settings)
    try:
        yield running_server
    finally:
        await running_server.stop()


async def add_device(server: RunningServer, user_id: str, platform: str, token: str) -> str:
    async with server.http(user_id) as http:
        response = await http.post("/api/devices", json={"platform": platform, "token": token})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def push_state(server: RunningServer, note_id: str) -> dict[str, Any]:
    async with server.http("alice") as http:
        for _ in range(250):
            body = (await http.get(f"/api/notifications/{note_id}")).json()
            push = body["deliveries"][0]
            if push["status"] in ("sent", "dead", "skipped"):
                return dict(body)
            await asyncio.sleep(0.02)
    raise AssertionError(f"the push delivery never ended: {body}")


async def create(server: RunningServer) -> dict[str, Any]:
    async with server.http("ci", "service") as http:
        response = await http.post("/api/notifications", json={**NOTE, "user_id": "alice"})
    assert response.status_code == 201
    return dict(response.json())


def devices_seen(fake: FakePushGateway) -> list[str]:
    return [seen.json()["device"]["id"] for seen in fake.seen]


async def test_a_retry_goes_only_to_the_device_that_failed_transiently(
    pusher: RunningServer, gateway: tuple[FakePushGateway, str]
) -> None:
    fake, _ = gateway
    phone = await add_device(pusher, "alice", "fcm", "fcm-token-1")
    tablet = await add_device(pusher, "alice", "apns", "a1" * 32)
    fake.then(Reply(503, b"busy"))  # the first request of the first try fails
    note = await create(pusher)
    body = await push_state(pusher, note["id"])
    assert body["deliveries"][0]["status"] == "sent"
    assert body["deliveries"][0]["attempts"] == 2
    assert body["status"] == "delivered"
    first_try, retry = devices_seen(fake)[:2], devices_seen(fake)[2:]
    assert sorted(first_try) == sorted([phone, tablet])
    assert len(retry) == 1 and retry[0] in first_try  # only the one that failed
    # The retried device gets the same idempotency key as on its first try.
    keys = [s.json()["idempotency_key"] for s in fake.seen
            if s.json()["device"]["id"] == retry[0]]
    assert len(keys) == 2 and keys[0] == keys[1]


async def test_a_gone_device_is_disabled_and_never_tried_again(
    pusher: RunningServer, gateway: tuple[FakePushGateway, str]
) -> None:
    fake, _ = gateway
    old_phone = await add_device(pusher, "alice", "fcm", "stale-token")
    fake.then(Reply(410, b"gone"))
    first = await create(pusher)
    body = await push_state(pusher, first["id"])
    assert body["deliveries"][0]["status"] == "dead"
    async with pusher.http("alice") as http:
        (device,) = (await http.get("/api/devices")).json()["items"]
    assert device["disabled_at"] is not None
    second = await create(pusher)
    body = await push_state(pusher, second["id"])
    assert body["deliveries"][0]["status"] == "skipped"  # no active device left
    assert devices_seen(fake) == [old_phone]


async def test_without_any_device_push_is_skipped(pusher: RunningServer) -> None:
    note = await create(pusher)
    body = await push_state(pusher, note["id"])
    assert body["deliveries"][0]["status"] == "skipped"
    assert pusher.metric("tidings_deliveries_total", medium="push", outcome="skipped") == 1


async def test_a_push_goes_to_at_most_the_cap_of_devices_the_newest(
    database_url: str, gateway: tuple[FakePushGateway, str]
) -> None:
    fake, url = gateway
    server = await start_server(make_settings(
        database_url, push_service_url=url, push_service_api_key="gw-secret",
        max_devices_per_user=2))
    try:
        # Written past the cap without the API (as rows from before the cap, or two
        # registrations that raced, would be): the send still stops at the cap.
        async with server.services.db.begin() as conn:
            for n in range(5):
                await device_store.register(conn, NewDevice(
                    f"00000000-0000-7000-8000-00000000000{n}", "alice", Platform.FCM,
                    f"tok-{n}"), utcnow())
        note = await create(server)
        body = await push_state(server, note["id"])
        assert body["deliveries"][0]["status"] == "sent"
        assert sorted(devices_seen(fake)) == ["00000000-0000-7000-8000-000000000003",
                                              "00000000-0000-7000-8000-000000000004"]
    finally:
        await server.stop()


async def test_a_push_carries_the_links_and_lives_no_longer_than_the_notification(
    pusher: RunningServer, gateway: tuple[FakePushGateway, str]
) -> None:
    fake, _ = gateway
    await add_device(pusher, "alice", "fcm", "tok-links")
    expires = (utcnow() + timedelta(hours=1)).isoformat()
    actions = [{"label": "Open build", "url": "https://ci.example/b/7"}]
    async with pusher.http("ci", "service") as http:
        response = await http.post("/api/notifications", json={
            **NOTE, "user_id": "alice", "url": "https://ci.example/", "actions": actions,
            "expires_at": expires})
    assert response.status_code == 201, response.text
    body = await push_state(pusher, response.json()["id"])
    assert body["deliveries"][0]["status"] == "sent"
    (seen,) = fake.seen
    sent = seen.json()
    assert sent["data"]["url"] == "https://ci.example/"
    assert json.loads(sent["data"]["actions"]) == actions
    assert 0 < sent["ttl"] <= 3600
