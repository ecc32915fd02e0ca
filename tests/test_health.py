"""Liveness, readiness, metrics."""

from __future__ import annotations

from tests.conftest import Client, RunningServer, free_port, make_settings, start_server


async def test_health_and_ready(server: RunningServer) -> None:
    async with server.http() as http:
        health = await http.get("/health")
        ready = await http.get("/ready")
        metrics = await http.get("/metrics")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    assert metrics.status_code == 200
    assert "tidings_create_to_emit_seconds_bucket" in metrics.text


async def test_ready_answers_503_when_the_database_is_unreachable() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    running = await start_server(make_settings(url))
    try:
        async with running.http() as http:
            health = await http.get("/health")
            ready = await http.get("/ready")
    finally:
        await running.stop()
    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"


async def test_database_outage_answers_503_and_an_error_event_never_500() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    running = await start_server(make_settings(url))
    try:
        async with running.http("svc", "service") as http:
            created = await http.post("/api/notifications", json={
                "user_id": "a", "type": "t", "title": "t", "message": "m"})
            listed = await http.get("/api/notifications")
        assert created.status_code == 503
        assert created.json()["error"]["code"] == "unavailable"
        assert listed.status_code == 503
        # Sockets still connect (only the token is checked); events needing the database
        # answer `unavailable` and the connection stays.
        client = Client()
        await client.sio.connect(running.url, auth={"token": running.token("a")},
                                 transports=["websocket"], wait_timeout=5)
        answer = await client.call("ack", {"id": "01a21873-2585-7090-aefe-aaf197d430f1"})
        assert answer["error"]["code"] == "unavailable"
        assert (await client.next("error"))["code"] == "unavailable"
        assert client.sio.connected
        await client.close()
    finally:
        await running.stop()
