"""The README walk-through, end to end: create over HTTP, receive over Socket.IO, ack, read."""

from __future__ import annotations

from tests.conftest import RunningServer


async def test_created_notification_reaches_connected_user_at_once(
    server: RunningServer, connect
) -> None:
    alice = await connect("alice")
    async with server.http("billing", "service") as http:
        response = await http.post("/api/notifications", json={
            "user_id": "alice", "type": "invoice", "title": "Invoice ready",
            "message": "Your invoice is ready", "data": {"invoice": 42},
        })
    assert response.status_code == 201
    created = response.json()
    received = await alice.next("notification")
    assert received == created
    assert received["status"] == "pending"
    assert received["data"] == {"invoice": 42}
