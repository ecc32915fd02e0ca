"""Liveness, readiness, metrics."""

from __future__ import annotations

import pytest

from tests.conftest import Client, RunningServer, free_port, make_settings, start_server
from tidings.api.requests import RequestContext
from tidings.support.metrics import Metrics

pytestmark = pytest.mark.both_databases


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


def response_count(metrics_text: str, code: str) -> float:
    prefix = f'tidings_http_responses_total{{code="{code}"}} '
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return 0.0


async def test_metrics_need_the_metrics_token_when_one_is_set(database_url: str) -> None:
    running = await start_server(make_settings(database_url, metrics_token="m" * 24))
    try:
        async with running.http() as http:
            missing = await http.get("/metrics")
            wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
            user_token = await http.get("/metrics", headers={
                "Authorization": f"Bearer {running.token('alice')}"})
            good = await http.get("/metrics", headers={"Authorization": "Bearer " + "m" * 24})
            lower = await http.get("/metrics", headers={"Authorization": "bearer " + "m" * 24})
            health = await http.get("/health")
    finally:
        await running.stop()
    for refused in (missing, wrong, user_token):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "authentication_failed"
        assert refused.headers["www-authenticate"] == "Bearer"
    assert good.status_code == 200 and "tidings_connections" in good.text
    assert lower.status_code == 200
    assert health.status_code == 200  # only /metrics is guarded


async def test_responses_are_counted_by_status_code(server: RunningServer) -> None:
    async with server.http("svc", "service") as http:
        created = await http.post("/api/notifications", json={
            "user_id": "a", "type": "t", "title": "t", "message": "m"})
        invalid = await http.post("/api/notifications", json={"user_id": "a"})
        too_big = await http.post("/api/notifications", content=b"x" * 2_000_000,
                                  headers={"Content-Type": "application/json"})
        before = (await http.get("/metrics")).text
        await http.post("/api/notifications", json={
            "user_id": "a", "type": "t", "title": "t", "message": "m"})
        after = (await http.get("/metrics")).text
    async with server.http() as anonymous:
        unauthenticated = await anonymous.get("/api/notifications")
        last = (await anonymous.get("/metrics")).text
    assert (created.status_code, invalid.status_code, too_big.status_code) == (201, 422, 413)
    assert unauthenticated.status_code == 401
    assert response_count(before, "201") == 1
    assert response_count(before, "422") == 1
    assert response_count(before, "413") == 1
    assert response_count(after, "201") == 2
    # Each /metrics answer is counted once it has started, so the next one sees it.
    assert response_count(after, "200") == response_count(before, "200") + 1
    assert response_count(last, "401") == 1


async def test_database_outage_shows_as_503_responses_in_the_metrics() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    running = await start_server(make_settings(url))
    try:
        async with running.http("svc", "service") as http:
            for _ in range(2):
                answer = await http.post("/api/notifications", json={
                    "user_id": "a", "type": "t", "title": "t", "message": "m"})
                assert answer.status_code == 503
            metrics = (await http.get("/metrics")).text
    finally:
        await running.stop()
    assert response_count(metrics, "503") == 2


async def test_an_app_that_raises_before_answering_counts_as_a_500() -> None:
    metrics = Metrics()

    async def broken(scope, receive, send) -> None:
        raise RuntimeError("no answer")

    async def never_called(message) -> None:
        raise AssertionError("nothing should be sent")

    app = RequestContext(broken, metrics)
    with pytest.raises(RuntimeError):
        await app({"type": "http", "headers": []}, None, never_called)
    assert response_count(metrics.render().decode(), "500") == 1
