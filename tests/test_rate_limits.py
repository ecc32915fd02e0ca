"""Rate limits and the socket cap, against real servers: a producer over its creation rate
gets 429 with Retry-After, a socket over its event rate gets `rate_limited` and stays up,
a user over the socket cap is refused; everyone else is unaffected. Limits are tiny
("3/minute") so that nothing depends on speed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio

from tests.conftest import (
    EVENT_TIMEOUT,
    Client,
    RunningServer,
    free_port,
    make_settings,
    start_server,
)
from tidings.services.rate_limits import REDIS_KEY_PREFIX

REDIS_URL = "redis://127.0.0.1:6379/0"
NOTE = {"type": "news", "title": "Hello", "message": "World", "channel": "news"}

Starter = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start(database_url: str) -> AsyncIterator[Starter]:
    """Starts servers on this test's database with the given settings; stops them all."""
    running: list[RunningServer] = []

    async def _start(**overrides: Any) -> RunningServer:
        server = await start_server(make_settings(database_url, **overrides))
        running.append(server)
        return server

    yield _start
    for server in running:
        await server.stop()


async def create(server: RunningServer, producer: str, user: str = "alice") -> Any:
    async with server.http(producer, "service") as http:
        return await http.post("/api/notifications", json={**NOTE, "user_id": user})


async def connect(server: RunningServer, user: str) -> Client:
    client = Client()
    await client.sio.connect(server.url, auth={"token": server.token(user)},
                             transports=["websocket"], wait_timeout=EVENT_TIMEOUT)
    assert (await client.next("connectionStatus"))["user_id"] == user
    return client


def assert_rate_limited(response: Any) -> int:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["retry_after"] == retry_after
    return retry_after


async def test_producer_over_its_create_rate_gets_429_with_retry_after(start: Starter) -> None:
    server = await start(rate_limit_creates="3/minute")
    for _ in range(3):
        assert (await create(server, "billing")).status_code == 201
    assert_rate_limited(await create(server, "billing"))
    assert_rate_limited(await create(server, "billing", user="bob"))

    assert (await create(server, "shipping")).status_code == 201
    async with server.http("alice") as http:
        listed = (await http.get("/api/notifications")).json()
    assert len(listed["items"]) == 4  # the refused requests created nothing


async def listed_count(server: RunningServer, user: str) -> int:
    async with server.http(user) as http:
        return len((await http.get("/api/notifications", params={"limit": 100})).json()["items"])


async def test_the_create_rate_counts_notifications_not_requests(start: Starter) -> None:
    """At 5/minute, one create to three users and one to two spend the budget; a third
    create, to one more user, is refused whole and creates nothing."""
    server = await start(rate_limit_creates="5/minute")
    async with server.http("billing", "service") as http:
        three = await http.post("/api/notifications",
                                json={**NOTE, "user_ids": ["u1", "u2", "u3"]})
        two = await http.post("/api/notifications", json={**NOTE, "user_ids": ["u4", "u4", "u5"]})
        one_more = await http.post("/api/notifications", json={**NOTE, "user_ids": ["u6"]})
    assert (three.status_code, two.status_code) == (202, 202)  # a repeated id counts once
    assert_rate_limited(one_more)
    assert await listed_count(server, "u6") == 0


async def test_a_create_that_would_cross_the_limit_is_refused_whole(start: Starter) -> None:
    server = await start(rate_limit_creates="5/minute")
    async with server.http("billing", "service") as http:
        assert (await http.post("/api/notifications",
                                json={**NOTE, "user_ids": ["a", "b", "c"]})).status_code == 202
        crossing = await http.post("/api/notifications",
                                   json={**NOTE, "user_ids": ["d", "e", "f"]})
        fits = await http.post("/api/notifications", json={**NOTE, "user_ids": ["g", "h"]})
    assert_rate_limited(crossing)  # 3 + 3 > 5: none of d, e, f gets one
    assert [await listed_count(server, user) for user in "def"] == [0, 0, 0]
    assert fits.status_code == 202  # what was refused was not counted


async def test_a_batch_counts_every_recipient_of_every_item(start: Starter) -> None:
    server = await start(rate_limit_creates="5/minute")
    items = [{**NOTE, "user_ids": [f"b{i}-{j}" for j in range(2)]} for i in range(3)]
    async with server.http("billing", "service") as http:
        fits = await http.post("/api/notifications/batch", json={"items": items[:2]})
        refused = await http.post("/api/notifications/batch",
                                  json={"items": [items[2], {**NOTE, "user_id": "c"}]})
        last = await http.post("/api/notifications/batch",
                               json={"items": [{**NOTE, "user_id": "c"}]})
    assert fits.status_code == 200
    assert [r["count"] for r in fits.json()["results"]] == [2, 2]
    assert_rate_limited(refused)  # 4 + 3 > 5: nothing of that batch is written
    assert await listed_count(server, "b2-0") == 0
    assert last.status_code == 200  # 4 + 1: the refused batch was not counted
    assert await listed_count(server, "c") == 1


async def test_a_channel_create_counts_one_per_subscriber_copy(start: Starter) -> None:
    server = await start(rate_limit_creates="3/minute")
    subscribers = [await connect(server, user) for user in ("s1", "s2")]
    try:
        for client in subscribers:
            assert (await client.call("subscribe", {"channels": ["news"]}))["ok"] is True
        async with server.http("billing", "service") as http:
            first = await http.post("/api/notifications", json=NOTE)
            second = await http.post("/api/notifications", json=NOTE)
            alone = await http.post("/api/notifications", json={**NOTE, "user_id": "x"})
    finally:
        for client in subscribers:
            await client.close()
    assert first.json()["count"] == 2
    assert_rate_limited(second)  # two more copies would make 4 > 3
    assert alone.status_code == 201


async def test_a_create_larger_than_a_whole_window_is_a_413_not_a_retry(
    start: Starter
) -> None:
    server = await start(rate_limit_creates="3/minute")
    async with server.http("billing", "service") as http:
        response = await http.post("/api/notifications",
                                   json={**NOTE, "user_ids": ["a", "b", "c", "d"]})
        batch = await http.post("/api/notifications/batch", json={"items": [
            {**NOTE, "user_ids": ["a", "b"]}, {**NOTE, "user_ids": ["c", "d"]}]})
    assert response.status_code == 413, response.text
    assert "Retry-After" not in response.headers
    error = response.json()["error"]
    assert error["field"] == "user_ids" and "RATE_LIMIT_CREATES" in error["message"]
    assert batch.status_code == 413 and batch.json()["error"]["field"] == "items"
    assert (await create(server, "billing")).status_code == 201  # nothing was counted


async def test_a_repeat_answered_from_its_idempotency_key_costs_nothing(
    start: Starter
) -> None:
    server = await start(rate_limit_creates="2/minute")
    async with server.http("billing", "service") as http:
        answers = [await http.post("/api/notifications", json={**NOTE, "user_id": "alice"},
                                   headers={"Idempotency-Key": "once"}) for _ in range(4)]
        items = {"items": [{**NOTE, "user_id": "bob"}]}
        batches = [await http.post("/api/notifications/batch", json=items,
                                   headers={"Idempotency-Key": "batch-once"})
                   for _ in range(3)]
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.json()["id"] for a in answers}) == 1
    assert [b.status_code for b in batches] == [200] * 3
    assert_rate_limited(await create(server, "billing"))  # 1 + 1 spent, not 7


async def test_rate_limited_create_is_in_the_openapi_document(start: Starter) -> None:
    server = await start()
    async with server.http() as http:
        document = (await http.get("/openapi.json")).json()
    assert "429" in document["paths"]["/api/notifications"]["post"]["responses"]


async def test_create_rate_of_zero_or_empty_is_no_limit(start: Starter) -> None:
    for off in ("0", ""):
        server = await start(rate_limit_creates=off)
        answers = [await create(server, "billing") for _ in range(5)]
        assert [answer.status_code for answer in answers] == [201] * 5


async def test_socket_over_its_event_rate_gets_rate_limited_and_stays_connected(
    start: Starter,
) -> None:
    server = await start(rate_limit_socket_events="3/minute")
    alice = await connect(server, "alice")
    bob = await connect(server, "bob")
    try:
        for _ in range(3):
            assert (await alice.call("subscribe", {"channels": ["news"]}))["ok"] is True
        refused = await alice.call("subscribe", {"channels": ["news"]})
        assert refused["ok"] is False
        assert refused["error"]["code"] == "rate_limited"
        assert refused["error"]["retry_after"] >= 1
        assert (await alice.next("error"))["code"] == "rate_limited"
        assert (await alice.call("nonsense", {}))["error"]["code"] == "rate_limited"

        assert (await bob.call("subscribe", {"channels": ["news"]}))["ok"] is True
        # Still connected: a notification still reaches alice live.
        assert (await create(server, "billing")).status_code == 201
        assert (await alice.next("notification"))["user_id"] == "alice"
        assert alice.sio.connected
        assert server.metric("tidings_socket_errors_total", code="rate_limited") == 2
    finally:
        await alice.close()
        await bob.close()


async def connect_refused(server: RunningServer, user: str) -> str:
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server.url, auth={"token": server.token(user)},
                             transports=["websocket"], wait_timeout=EVENT_TIMEOUT)
    assert errors
    return str(errors[0]["message"])


async def wait_for_connections(server: RunningServer, count: int) -> None:
    """The server handles a disconnect after the client has moved on: await it (bounded)."""
    for _ in range(500):
        if server.metric("tidings_connections") == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the server never had {count} connections")


async def test_user_over_the_socket_cap_is_refused_with_a_reason(start: Starter) -> None:
    server = await start(max_sockets_per_user=2)
    first, second = await connect(server, "alice"), await connect(server, "alice")
    bob = await connect(server, "bob")
    try:
        assert await connect_refused(server, "alice") == "Too many connections"
        assert first.sio.connected and second.sio.connected

        await first.close()
        await wait_for_connections(server, 2)
        again = await connect(server, "alice")  # a closed socket frees its place
        await again.close()
    finally:
        await second.close()
        await bob.close()


async def test_socket_cap_of_zero_is_no_cap(start: Starter) -> None:
    server = await start(max_sockets_per_user=0)
    clients = [await connect(server, "alice") for _ in range(3)]
    for client in clients:
        await client.close()


async def test_bad_token_is_still_refused_as_an_authentication_failure(
    start: Starter,
) -> None:
    server = await start(max_sockets_per_user=1)
    await connect(server, "alice")  # alice is at the cap; a bad token is still a bad token
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server.url, auth={"token": "garbage"},
                             transports=["websocket"], wait_timeout=EVENT_TIMEOUT)
    assert errors[0]["message"] == "Authentication failed"


# -- shared counts in Redis ----------------------------------------------------------------


async def _redis_or_skip() -> aioredis.Redis:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError):
        await client.aclose()
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    return client


@pytest.fixture
async def producer() -> AsyncIterator[str]:
    """A producer name of this test's own; its counters are removed from Redis after."""
    client = await _redis_or_skip()
    name = f"svc-{uuid.uuid4().hex}"
    try:
        yield name
    finally:
        keys = [key async for key in client.scan_iter(f"{REDIS_KEY_PREFIX}:*{name}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_nodes_sharing_redis_share_a_producers_create_budget(
    start: Starter, producer: str
) -> None:
    one = await start(rate_limit_creates="3/minute", redis_url=REDIS_URL)
    two = await start(rate_limit_creates="3/minute", redis_url=REDIS_URL)
    assert (await create(one, producer)).status_code == 201
    assert (await create(two, producer)).status_code == 201
    assert (await create(one, producer)).status_code == 201
    assert_rate_limited(await create(two, producer))
    assert_rate_limited(await create(one, producer))
    assert (await create(two, f"{producer}-other")).status_code == 201


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_creates_go_through_when_redis_is_unreachable(
    start: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start(rate_limit_creates="1/minute",
                         redis_url=f"redis://127.0.0.1:{free_port()}/0")
    answers = [await create(server, "billing") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [201] * 3
    assert "rate-limit storage unreachable" in caplog.text
