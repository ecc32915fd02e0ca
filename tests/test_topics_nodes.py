"""Producer-managed topics across nodes (one PostgreSQL, one Redis): a subscription made or
ended through one node changes what the user's sockets on another node receive from the
channel's next create, and one create to a topic of 1,000 producer-added users reaches
every connected one of them live, on both nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import EVENT_TIMEOUT, Client, RunningServer, make_settings, start_server
from tests.redis_servers import RedisServer
from tidings.store.tables import notifications

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

NOTE = {"type": "launch", "message": "m", "media": ["in_app"]}
Nodes = Callable[..., Awaitable[list[RunningServer]]]


@pytest.fixture(autouse=True)
def _needs_redis(needs_redis: None) -> None:
    """Every test here needs the redis-server binaries (conftest.py's `needs_redis`)."""


@pytest.fixture
async def nodes(database_url: str) -> AsyncIterator[Nodes]:
    started: list[RunningServer] = []

    async def _start(count: int, redis_url: str, **overrides: Any) -> list[RunningServer]:
        for _ in range(count):
            settings = make_settings(database_url, redis_url=redis_url, redis_prefix="t",
                                     **overrides)
            started.append(await start_server(settings))
        for node in started:
            while node.metric("tidings_redis_up") != 1:  # noqa: ASYNC110 - a gauge
                await asyncio.sleep(0.02)
        return started[-count:]

    yield _start
    for node in started:
        await node.stop()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[RunningServer, str], Awaitable[Client]]]:
    opened: list[Client] = []

    async def _connect(node: RunningServer, user: str) -> Client:
        client = Client()
        opened.append(client)
        await client.sio.connect(node.url, auth={"token": node.token(user)},
                                 transports=["websocket"], wait_timeout=EVENT_TIMEOUT)
        assert (await client.next("connectionStatus"))["user_id"] == user
        return client

    yield _connect
    await asyncio.gather(*(client.close() for client in opened))


async def change(node: RunningServer, channel: str, body: dict[str, Any]) -> dict[str, Any]:
    async with node.http("catalog", "service") as http:
        response = await http.put(f"/api/channels/{channel}/subscribers", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def post(node: RunningServer, **fields: Any) -> dict[str, Any]:
    async with node.http("catalog", "service") as http:
        response = await http.post("/api/notifications", json={**NOTE, **fields})
    assert response.status_code in (201, 202), response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.mark.parametrize("transport", ["lean", "python-socketio"])
async def test_a_change_through_one_node_reaches_sockets_on_the_other(
        nodes: Nodes, redis_server: RedisServer, clients: Any, transport: str) -> None:
    a, b = await nodes(2, redis_server.url, realtime_transport=transport)
    alice = await clients(b, "alice")
    assert await change(a, "launches", {"add": ["alice"]}) == {"added": 1, "removed": 0}
    assert (await post(a, channel="launches", title="joined"))["count"] == 1
    got = await alice.next("notification")
    assert got["title"] == "joined" and got["channel"] == "launches"

    assert await change(a, "launches", {"remove": ["alice"]}) == {"added": 0, "removed": 1}
    assert (await post(a, channel="launches", title="left"))["count"] == 0
    # The next thing through node A for alice arrives; the channel's create did not.
    await post(a, user_id="alice", title="direct")
    assert (await alice.next("notification"))["title"] == "direct"
    assert alice.queue("notification").empty()


async def test_one_create_reaches_a_thousand_producer_added_users_on_two_nodes(
        nodes: Nodes, redis_server: RedisServer, clients: Any) -> None:
    """1,000 users subscribed in one call, every one of them connected (500 on each node),
    every one given a stored copy and the create live. (About ten seconds: the sockets
    connect a hundred at a time, so that a busy machine does not time them out.)"""
    a, b = await nodes(2, redis_server.url)
    users = [f"fan-{n:04d}" for n in range(1_000)]
    assert await change(a, "big-launch", {"add": users}) == {"added": 1_000, "removed": 0}
    sockets: list[Client] = []
    for start in range(0, len(users), 100):
        sockets += await asyncio.gather(*(clients(a if i % 2 else b, users[i])
                                          for i in range(start, start + 100)))

    assert (await post(b, channel="big-launch", title="lift-off"))["count"] == 1_000
    received = await asyncio.gather(*(socket.next("notification") for socket in sockets))
    assert [note["user_id"] for note in received] == users
    assert all(note["title"] == "lift-off" for note in received)
    assert len({note["id"] for note in received}) == len(users)  # a copy each
    async with a.services.db.begin() as conn:
        stored = await conn.execute(
            sa.select(notifications.c.user_id).where(notifications.c.channel == "big-launch"))
        assert sorted(stored.scalars()) == users
    assert all(socket.queue("notification").empty() for socket in sockets)
