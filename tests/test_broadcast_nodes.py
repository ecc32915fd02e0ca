"""A broadcast across nodes (one PostgreSQL, one Redis): created through one node, it
reaches every connected socket on both, whoever they are, once each; a user's read on one
node reaches that user's sockets on the other and nobody else's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import EVENT_TIMEOUT, Client, RunningServer, make_settings, start_server
from tests.redis_servers import RedisServer

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

Nodes = Callable[..., Awaitable[list[RunningServer]]]


@pytest.fixture(autouse=True)
def _needs_redis(needs_redis: None) -> None:
    """Every test here needs the redis-server binaries (conftest.py's `needs_redis`)."""


@pytest.fixture
async def nodes(database_url: str) -> AsyncIterator[Nodes]:
    started: list[RunningServer] = []

    async def _start(count: int, redis_url: str, **overrides: Any) -> list[RunningServer]:
        for _ in range(count):
            settings = make_settings(database_url, redis_url=redis_url, redis_prefix="b",
                                     **overrides)
            started.append(await start_server(settings))
        for node in started:
            while node.metric("tidings_redis_up") != 1:  # noqa: ASYNC110 - a gauge
                await asyncio.sleep(0.02)
        return started[-count:]

    yield _start
    for node in started:
        await node.stop()


async def open_socket(node: RunningServer, user: str, opened: list[Client]) -> Client:
    client = Client()
    opened.append(client)
    await client.sio.connect(node.url, auth={"token": node.token(user)},
                             transports=["websocket"], wait_timeout=EVENT_TIMEOUT)
    assert (await client.next("connectionStatus"))["user_id"] == user
    return client


@pytest.mark.parametrize("transport", ["lean", "python-socketio"])
async def test_a_broadcast_reaches_every_socket_on_both_nodes_once(
        nodes: Nodes, redis_server: RedisServer, transport: str) -> None:
    a, b = await nodes(2, redis_server.url, realtime_transport=transport)
    opened: list[Client] = []
    try:
        users = [f"u{n:02d}" for n in range(20)]
        sockets = [await open_socket(a if n % 2 else b, user, opened)
                   for n, user in enumerate(users)]
        alice_on_a = await open_socket(a, "u00", opened)  # u00's second socket
        async with a.http("ops", "admin") as http:
            response = await http.post("/api/notifications", json={
                "broadcast": True, "type": "news", "title": "All hands", "message": "m"})
        assert response.status_code == 202, response.text
        note_id = response.json()["id"]
        for socket in [*sockets, alice_on_a]:
            got = await socket.next("notification")
            assert (got["id"], got["title"]) == (note_id, "All hands")

        assert (await sockets[0].call("markAsRead", {"id": note_id}))["ok"] is True
        status = await alice_on_a.next("notificationStatus")  # u00's tab on the other node
        assert (status["id"], status["status"]) == (note_id, "read")
        await asyncio.sleep(0.3)  # time for anything stray to arrive
        assert all(s.queue("notification").empty() for s in [*sockets, alice_on_a])
        assert all(s.queue("notificationStatus").empty() for s in sockets[1:])
    finally:
        await asyncio.gather(*(client.close() for client in opened))
