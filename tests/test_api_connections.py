"""`GET /api/admin/connections`: who is connected, counted by user on each node; on one
node from its own sockets, on several from the summaries each publishes to Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from tests import test_redis_cluster_topology as cluster_tests
from tests.conftest import EVENT_TIMEOUT, Client, RunningServer, make_settings, start_server
from tests.redis_servers import RedisServer
from tidings.client import AsyncTidingsClient, PermissionDenied, TidingsClient, UserSockets
from tidings.domain.connections import NodeConnections, summarise

PATH = "/api/admin/connections"


async def answer(server: RunningServer, **params: Any) -> dict[str, Any]:
    async with server.http("ops", "admin") as http:
        response = await http.get(PATH, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.both_databases
async def test_only_an_admin_may_see_the_connections(server: RunningServer) -> None:
    async with server.http() as anon, server.http("alice") as user, \
            server.http("svc", "service") as service:
        assert (await anon.get(PATH)).status_code == 401
        assert (await user.get(PATH)).status_code == 403
        denied = await service.get(PATH)
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "forbidden"


@pytest.mark.both_databases
async def test_one_node_lists_its_users_with_their_sockets(
    server: RunningServer, connect: Any,
) -> None:
    await connect("alice")
    await connect("alice")
    await connect("bob")
    body = await answer(server)
    assert body["connections"] == 3 and body["partial"] is False
    [node] = body["nodes"]
    assert node["connections"] == 3 and node["users_total"] == 2
    assert node["users"] == [{"user_id": "alice", "sockets": 2},
                             {"user_id": "bob", "sockets": 1}]


async def test_a_socket_that_leaves_is_no_longer_counted(
    server: RunningServer, connect: Any,
) -> None:
    alice = await connect("alice")
    await connect("bob")
    await alice.close()
    for _ in range(250):  # the server sees the close in its own task
        [node] = (await answer(server))["nodes"]
        if node["connections"] == 1:
            break
        await asyncio.sleep(0.02)
    assert node["users"] == [{"user_id": "bob", "sockets": 1}]


async def test_limit_caps_the_users_listed_but_not_the_totals(
    server: RunningServer, connect: Any,
) -> None:
    for user in ("carol", "bob", "alice"):
        await connect(user)
    [node] = (await answer(server, limit=2))["nodes"]
    assert node["users_total"] == 3 and node["connections"] == 3
    assert [u["user_id"] for u in node["users"]] == ["alice", "bob"]  # ties by user id
    async with server.http("ops", "admin") as http:
        for bad in ("0", "201", "x"):
            refused = await http.get(PATH, params={"limit": bad})
            assert refused.status_code == 422, bad


async def test_the_python_clients_read_the_connections(
    server: RunningServer, connect: Any,
) -> None:
    await connect("alice")
    await connect("bob")
    await connect("bob")
    async with AsyncTidingsClient(server.url, server.token("ops", "admin")) as client:
        seen = await client.connections(limit=1)
    assert seen.connections == 3 and not seen.partial
    [node] = seen.nodes
    assert (node.connections, node.users_total) == (3, 2)
    assert node.users == [UserSockets("bob", 2)]

    def blocking() -> int:
        with TidingsClient(server.url, server.token("ops", "admin")) as client:
            return client.connections().connections

    assert await asyncio.to_thread(blocking) == 3
    async with AsyncTidingsClient(server.url, server.token("svc", "service")) as client:
        with pytest.raises(PermissionDenied):
            await client.connections()


def test_a_summary_lists_the_most_sockets_first_and_at_most_the_cap() -> None:
    counts = {f"u{n:03}": 1 for n in range(300)} | {"zed": 5, "amy": 5, "bo": 2}
    summary = summarise("n1", counts)
    assert summary.connections == 312 and summary.users_total == 303
    assert len(summary.users) == 200
    assert [u.user_id for u in summary.users[:4]] == ["amy", "zed", "bo", "u000"]
    assert NodeConnections.from_json(summary.to_json()) == summary


# -- several nodes over Redis ---------------------------------------------------------------

masters = cluster_tests.masters  # three redis-servers as a cluster (a fixture)

Nodes = Callable[..., Awaitable[list[RunningServer]]]


@pytest.fixture
async def nodes(database_url: str, needs_redis: None) -> AsyncIterator[Nodes]:
    started: list[RunningServer] = []

    async def _start(count: int, redis_url: str, **overrides: Any) -> list[RunningServer]:
        for _ in range(count):
            settings = make_settings(database_url, redis_url=redis_url, redis_prefix="t",
                                     **overrides)
            started.append(await start_server(settings))
        return started[-count:]

    yield _start
    for node in started:
        await node.stop()


async def connected(node: RunningServer, user: str) -> Client:
    client = Client()
    await client.sio.connect(node.url, auth={"token": node.token(user)},
                             transports=["websocket"], wait_timeout=EVENT_TIMEOUT)
    await client.next("connectionStatus")
    return client


async def until_listed(node: RunningServer, expected: dict[str, dict[str, int]]) -> None:
    """Until `node` answers these users per node name (the others publish within
    about half a second of a change)."""
    async def poll() -> None:
        while True:
            body = await answer(node)
            seen = {n["node"]: {u["user_id"]: u["sockets"] for u in n["users"]}
                    for n in body["nodes"]}
            if seen == expected:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), EVENT_TIMEOUT)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_each_node_answers_for_every_node_through_redis(
    nodes: Nodes, redis_server: RedisServer,
) -> None:
    a, b = await nodes(2, redis_server.url)
    name_a, name_b = a.services.census.node, b.services.census.node
    clients = [await connected(a, "alice"), await connected(b, "alice"),
               await connected(b, "bob")]
    try:
        expected = {name_a: {"alice": 1}, name_b: {"alice": 1, "bob": 1}}
        await until_listed(a, expected)
        await until_listed(b, expected)
        body = await answer(a)
        assert body["connections"] == 3 and body["partial"] is False
        assert [n["node"] for n in body["nodes"]] == sorted([name_a, name_b])
        redis = Redis.from_url(redis_server.url)
        try:
            assert await redis.ttl(f"{{t:connections}}:{name_b}") > 0
        finally:
            await redis.aclose()
    finally:
        for client in clients:
            await client.close()
    # A node that stops takes its summary with it.
    await b.stop()
    await until_listed(a, {name_a: {}})


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_nodes_on_a_redis_cluster_answer_for_each_other(
    nodes: Nodes, masters: list[RedisServer],
) -> None:
    a, b = await nodes(2, masters[0].url, redis_cluster=True)
    clients = [await connected(a, "alice"), await connected(b, "bob")]
    try:
        expected = {a.services.census.node: {"alice": 1}, b.services.census.node: {"bob": 1}}
        await until_listed(a, expected)
        await until_listed(b, expected)
    finally:
        for client in clients:
            await client.close()
