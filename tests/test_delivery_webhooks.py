"""Event webhooks end to end: an admin registers a URL; deliveries and status changes are
POSTed to it, signed per Standard Webhooks, by the same queue with the same retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import RunningServer, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server
from tests.fakes.web import Recorded, Reply, ScriptedHTTP, http_server
from tests.test_delivery_email import add_email

pytestmark = pytest.mark.both_databases


@pytest.fixture
async def rig(database_url: str) -> AsyncIterator[tuple[RunningServer, ScriptedHTTP, str]]:
    receiver = ScriptedHTTP()
    async with smtp_server(ScriptedHandler()) as smtp_port, http_server(receiver) as url:
        settings = make_settings(database_url, smtp_host="127.0.0.1", smtp_port=smtp_port,
                                 smtp_starttls=False, allow_private_targets=True,
                                 retry_delays_ms=[50, 50], max_retry_attempts=2)
        server = await start_server(settings)
        try:
            yield server, receiver, f"{url}/hooks/tidings"
        finally:
            await server.stop()


async def events_received(receiver: ScriptedHTTP, count: int) -> list[Recorded]:
    for _ in range(250):
        if len(receiver.requests) >= count:
            return list(receiver.requests)
        await asyncio.sleep(0.02)
    raise AssertionError(f"{len(receiver.requests)} webhook requests, wanted {count}")


async def test_events_are_signed_and_cover_delivery_and_status(
    rig: tuple[RunningServer, ScriptedHTTP, str],
) -> None:
    server, receiver, url = rig
    async with server.http("root", "admin") as admin:
        created = await admin.post("/api/admin/webhooks", json={
            "url": url, "events": ["delivery.sent", "notification.delivered",
                                   "notification.read"]})
    assert created.status_code == 201
    secret = created.json()["secret"]
    receiver.replies.append(Reply(503))  # the first POST is retried
    await add_email(server, "alice", "alice@example.test")
    async with server.http("billing", "service") as http:
        note = (await http.post("/api/notifications", json={
            "user_id": "alice", "type": "invoice", "title": "Invoice", "message": "ready",
            "media": ["email"]})).json()
    await events_received(receiver, 3)  # two events, one of them retried
    async with server.http("alice") as alice:
        assert (await alice.put(f"/api/notifications/{note['id']}/read")).status_code == 200
    requests = await events_received(receiver, 4)
    verifier = Webhook(secret)
    bodies: list[dict[str, Any]] = []
    for request in requests:
        verifier.verify(request.body, request.headers)  # raises on a bad signature
        bodies.append(json.loads(request.body))
    ids = [request.headers["webhook-id"] for request in requests]
    retried = [event_id for event_id in set(ids) if ids.count(event_id) == 2]
    assert len(retried) == 1 and len(set(ids)) == 3  # the 503 was retried, same id
    types = {body["type"] for body in bodies}
    assert types == {"delivery.sent", "notification.delivered", "notification.read"}
    sent = next(b for b in bodies if b["type"] == "delivery.sent")["data"]
    assert sent["notification_id"] == note["id"] and sent["medium"] == "email"
    read = next(b for b in bodies if b["type"] == "notification.read")["data"]
    assert read["status"] == "read" and read["read_at"] is not None


async def test_a_removed_webhook_gets_nothing_more(
    rig: tuple[RunningServer, ScriptedHTTP, str],
) -> None:
    server, receiver, url = rig
    async with server.http("root", "admin") as admin:
        hook = (await admin.post("/api/admin/webhooks", json={
            "url": url, "events": ["notification.read"]})).json()
        assert (await admin.delete(f"/api/admin/webhooks/{hook['id']}")).status_code == 204
    async with server.http("billing", "service") as http:
        note = (await http.post("/api/notifications", json={
            "user_id": "alice", "type": "t", "title": "x", "message": "y"})).json()
    async with server.http("alice") as alice:
        await alice.put(f"/api/notifications/{note['id']}/read")
        body = (await alice.get(f"/api/notifications/{note['id']}")).json()
    assert body["status"] == "read"
    assert receiver.requests == []
