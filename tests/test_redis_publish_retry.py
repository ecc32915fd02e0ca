"""A publish that times out, fails or meets the open breaker is published again once Redis
answers: a socket on another node gets every notification live, once, without
reconnecting. Redis is made to time out while it is up by stopping its process (SIGSTOP)
for a moment, as a busy publishing node would see it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from tests import test_redis_fanout as fanout_tests
from tests.conftest import make_settings, start_server
from tests.redis_servers import RedisServer
from tests.test_redis_fanout import (
    Nodes,
    Recorder,
    create,
    direct_fanout,
    fanout_of,
    until,
    user_messages,
)
from tidings.domain.model import utcnow
from tidings.domain.notification import StatusChange
from tidings.realtime.catchup import CatchUp, Recent
from tidings.realtime.redis.retry import Backlog
from tidings.services.fanout_reads import FanoutReads
from tidings.store.catchup import USERS_PER_QUERY
from tidings.store.database import Database
from tidings.support.metrics import Metrics

pytestmark = pytest.mark.system

# The fan-out tests' fixtures: nodes on the test's database, clients (the Redis server is
# conftest.py's `redis_server`).
nodes = fanout_tests.nodes
clients = fanout_tests.clients
database = fanout_tests.database

on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

PAUSE_S = 0.4


def read(notification_id: str) -> StatusChange:
    """A status change for alice, whose channel the receiving fan-out listens to."""
    return StatusChange(notification_id, "alice", "read", None, None)


@on_postgresql
async def test_publishes_that_time_out_reach_the_other_node_live_and_once(
    nodes: Nodes, redis_server: RedisServer, clients: Any,
) -> None:
    # No creation limit: its counters live in Redis too, and a create would wait for
    # them rather than reach its publish while Redis does not answer.
    a, b = await nodes(2, redis_server.url, rate_limit_creates="0")
    alice = await clients(a, "alice")
    created: list[str] = []

    async def load() -> None:
        for index in range(40):
            created.append((await create(b, "alice", f"load-{index}"))["id"])
            await asyncio.sleep(0.02)

    loading = asyncio.create_task(load())
    try:
        await until(lambda: len(created) >= 5)
        redis_server.pause()  # up, but answering nothing: b's next publish times out
        try:
            # At least PAUSE_S (longer than a publish may wait), and until the breaker
            # has opened and something waits to be sent again.
            await asyncio.sleep(PAUSE_S)
            await until(lambda: fanout_of(b).backlog > 0)
        finally:
            redis_server.resume()
        await asyncio.wait_for(loading, 60)
        received = [(await alice.next("notification"))["id"] for _ in created]
        await until(lambda: fanout_of(b).backlog == 0)
    finally:
        loading.cancel()
    assert sorted(received) == sorted(created)  # none lost
    assert alice.queue("notification").empty()  # none twice on the socket
    assert alice.sio.connected  # live, not replayed after a reconnect
    assert alice.queue("connectionStatus").empty()
    assert a.metric("tidings_redis_up") == 1
    assert (b.metric("tidings_fanout_publish_skipped_total") or 0) == 0
    # What a timed-out publish carried may have reached Redis too: a read it twice at
    # most, and emitted it once.
    read = user_messages(a)
    assert len(created) <= read <= 2 * len(created)


@on_postgresql
async def test_the_backlog_is_bounded_kept_in_order_and_counts_what_it_refuses(
    redis_server: RedisServer, database: Database,
) -> None:
    metrics = Metrics()
    sender = direct_fanout(redis_server, database, metrics, backlog=Backlog(max_messages=3))
    receiver = direct_fanout(redis_server, database, Metrics())
    recorder = Recorder()
    receiver.attach(recorder)
    await sender.start()
    await receiver.start()
    await receiver.watch("alice")
    try:
        redis_server.pause()
        try:
            for index in range(5):
                await sender.status_changed(read(f"k{index}"))
            assert not sender.publishing
            assert sender.backlog == 3
            assert metrics.registry.get_sample_value("tidings_fanout_publish_skipped_total") == 2
        finally:
            redis_server.resume()
        await until(lambda: sender.backlog == 0)
        await until(lambda: ("k2", "read") in recorder.statuses)
    finally:
        await sender.close()
        await receiver.close()
    # The first (timed out) may have arrived twice, and is emitted once; the order holds.
    assert recorder.statuses == [("k0", "read"), ("k1", "read"), ("k2", "read")]
    assert sender.publishing


@on_postgresql
async def test_a_node_that_closes_publishes_what_waits_once_more(
    redis_server: RedisServer, database: Database,
) -> None:
    sender = direct_fanout(redis_server, database, Metrics())
    receiver = direct_fanout(redis_server, database, Metrics())
    recorder = Recorder()
    receiver.attach(recorder)
    await sender.start()
    await receiver.start()
    await receiver.watch("alice")
    try:
        redis_server.pause()
        try:
            await sender.status_changed(read("last"))
            assert sender.backlog == 1  # and the breaker open for a second
        finally:
            redis_server.resume()
        await sender.close()  # before the breaker closes: the close sends it
        await until(lambda: ("last", "read") in recorder.statuses)
    finally:
        await sender.close()
        await receiver.close()


def test_a_backlog_refuses_what_exceeds_its_bytes_and_empties_in_order() -> None:
    backlog = Backlog(max_messages=10, max_bytes=20)
    assert backlog.add([("c", b"x" * 8), ("c", b"y" * 8), ("c", b"z" * 8)]) == 1
    assert len(backlog) == 2 and backlog.waiting.is_set()
    assert backlog.head(1) == [("c", b"x" * 8)]
    backlog.drop(1)
    assert backlog.add([("c", b"w" * 8)]) == 0
    assert [data for _, data in backlog.head()] == [b"y" * 8, b"w" * 8]
    backlog.drop(5)
    assert not backlog and not backlog.waiting.is_set()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_the_outage_poll_finds_every_held_user_however_many(
    database: Database, database_url: str,
) -> None:
    """PostgreSQL takes the held users as one array, SQLite in slices: both find all."""
    held = [f"user-{index}" for index in range(USERS_PER_QUERY + 100)]
    node = await start_server(make_settings(database_url))  # one node, no Redis
    try:
        start = utcnow() - timedelta(seconds=1)
        created = [(await create(node, user))["id"] for user in (held[0], held[-1], held[7])]
        await create(node, "not-held")
    finally:
        await node.stop()
    recorder = Recorder()
    catchup = CatchUp(FanoutReads(database), Recent(), lambda: held)
    catchup.watermark = start
    await catchup.poll(recorder)
    assert sorted(recorder.notifications) == sorted(created)
