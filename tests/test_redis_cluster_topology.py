"""A Redis Cluster whose slots move while nodes run: the subscriptions of the moved slot
follow it to its new master, publishes answered MOVED go to the new master at once, and
nothing committed meanwhile is lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from tests import test_redis_fanout as fanout_tests
from tests.redis_servers import (
    RedisServer,
    add_node,
    create_cluster,
    move_slot,
    redis_cli,
    slot_owner,
)
from tests.test_redis_fanout import Nodes, create, fanout_of, until, user_messages

pytestmark = [pytest.mark.system,
              pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)]

# The fan-out tests' fixtures: nodes on the test's database and their clients.
nodes = fanout_tests.nodes
clients = fanout_tests.clients


async def until_subscribed(server: RedisServer, channel: str) -> None:
    """Until one connection holds a sharded subscription to `channel` on `server`."""
    async def poll() -> None:
        while (await redis_cli(server.port, "pubsub", "shardnumsub",  # noqa: ASYNC110
                               channel)).split()[1] != "1":
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), 20)


@pytest.fixture
async def masters(tmp_path: Path) -> AsyncIterator[list[RedisServer]]:
    servers = [RedisServer(tmp_path, cluster=True) for _ in range(3)]
    try:
        for server in servers:
            await server.start()
        await create_cluster(servers)
        yield servers
    finally:
        for server in servers:
            await server.stop()


async def test_a_held_users_slot_moves_to_another_master_and_delivery_follows(
    nodes: Nodes, masters: list[RedisServer], clients: Any,
) -> None:
    a, b = await nodes(2, masters[0].url, redis_cluster=True)
    alice = await clients(a, "alice")
    since = datetime.now(UTC).isoformat()
    created = [(await create(b, "alice", "before"))["id"]]
    received = [(await alice.next("notification"))["id"]]

    slot = key_slot(fanout_of(a).user_channel("alice").encode())
    source = await slot_owner(masters, slot)
    target = next(server for server in masters if server is not source)
    await move_slot(masters, slot, source, target)
    assert await slot_owner(masters, slot) is target
    # Created while the nodes learn of the move: `b` publishes to the old owner (MOVED,
    # sent again to the new one), `a` had its subscription dropped by the old owner and
    # polls the database until it has subscribed again at the new one.
    for index in range(5):
        created.append((await create(b, "alice", f"during-{index}"))["id"])
        await asyncio.sleep(0.1)
    channel = fanout_of(a).user_channel("alice")
    await until_subscribed(target, channel)  # `a` read the new map and subscribed there
    await until(lambda: a.metric("tidings_redis_up") == 1, timeout=20)

    # `a` is on Redis again (it polls no more): what reaches alice now came through the
    # subscription at the slot's new master. A publish may still time out (250 ms) while
    # `b` reopens its links on this busy machine: then the next create goes through.
    before = user_messages(a)
    for attempt in range(5):
        after = (await create(b, "alice", f"after-{attempt}"))["id"]
        created.append(after)
        with contextlib.suppress(TimeoutError):
            while after not in received:
                received.append((await alice.next("notification", timeout=2))["id"])
            break
    assert after in received
    assert user_messages(a) > before
    assert len(set(received)) == len(received)  # nothing twice
    # Nothing lost: a publish that timed out in the move (best effort, on this busy
    # machine) is in the client's replay, as after any gap.
    answer = await alice.call("requestMissedNotifications", {"since": since})
    assert answer == {"ok": True, "count": len(created)}
    replayed: set[str] = set()
    while not set(created) <= replayed:  # a late live one may come first
        replayed.add((await alice.next("notification"))["id"])
    assert replayed == set(created)


async def test_the_create_limit_counts_each_producer_on_its_slots_master(
    nodes: Nodes, masters: list[RedisServer],
) -> None:
    one, two = await nodes(2, masters[0].url, redis_cluster=True,
                           rate_limit_creates="2/minute")

    async def status(node: Any, producer: str) -> int:
        async with node.http(producer, "service") as http:
            response = await http.post("/api/notifications", json={
                "user_id": "alice", "type": "t", "title": "t", "message": "m",
                "media": ["in_app"]})
        return int(response.status_code)

    # Producers whose counters fall on every master (a limiter talking to one master only
    # would be answered MOVED for the others, and let their creations through).
    producers = [f"producer-{index}" for index in range(6)]
    for producer in producers:
        assert [await status(one, producer), await status(two, producer),
                await status(one, producer)] == [201, 201, 429], producer


async def test_a_slot_moved_to_a_master_added_later_is_followed(
    nodes: Nodes, masters: list[RedisServer], clients: Any, tmp_path: Path,
) -> None:
    a, b = await nodes(2, masters[0].url, redis_cluster=True)
    alice = await clients(a, "alice")
    added = RedisServer(tmp_path, cluster=True)
    await added.start()
    try:
        await add_node(masters, added)
        slot = key_slot(fanout_of(a).user_channel("alice").encode())
        await move_slot([*masters, added], slot, await slot_owner(masters, slot), added)
        assert await slot_owner([*masters, added], slot) is added
        await until_subscribed(added, fanout_of(a).user_channel("alice"))  # `a` did
        await until(lambda: a.metric("tidings_redis_up") == 1, timeout=20)
        # `b` knew no such master: its publish is answered MOVED, and goes there.
        before = user_messages(a)
        created = (await create(b, "alice", "on the new master"))["id"]
        assert (await alice.next("notification"))["id"] == created
        assert user_messages(a) == before + 1
    finally:
        await added.stop()
