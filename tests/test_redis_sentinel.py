"""Redis behind Sentinel (`REDIS_URL=redis+sentinel://...`): nodes find the master through
the Sentinels and follow it through a failover, whether the master dies or is demoted
alive, and nothing committed is lost on the way. Real processes: a master, a replica and
Sentinels (`redis-server --sentinel`), each on its own loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests import test_redis_fanout as fanout_tests
from tests.redis_servers import (
    RedisServer,
    SentinelServer,
    redis_cli,
    sentinel_url,
    until_master,
)
from tests.test_redis_fanout import Nodes, Recorder, create, fanout_of, until, user_messages
from tidings.domain.notification import StatusChange
from tidings.realtime.redis.fanout import RedisFanout
from tidings.realtime.redis.links import build_links
from tidings.services.fanout_reads import FanoutReads
from tidings.store.database import Database
from tidings.support.metrics import Metrics

pytestmark = [pytest.mark.system,
              pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)]

# The fan-out tests' fixtures: nodes on the test's database, their clients, a database.
nodes = fanout_tests.nodes
clients = fanout_tests.clients
database = fanout_tests.database


class Deployment:
    """A master, its replica and the Sentinels watching them."""

    def __init__(self, directory: Path, sentinels: int, password: str = "",
                 sentinel_password: str = "", master_extra: tuple[str, ...] = ()) -> None:
        self.master = RedisServer(directory, password=password, extra=master_extra)
        self.replica = RedisServer(directory, password=password, replica_of=self.master)
        self.sentinels = [SentinelServer(directory, self.master, quorum=sentinels // 2 + 1,
                                         password=sentinel_password)
                          for _ in range(sentinels)]

    @property
    def url(self) -> str:
        return sentinel_url(self.sentinels)

    async def start(self) -> None:
        await self.master.start()
        await self.replica.start()
        for sentinel in self.sentinels:
            await sentinel.start()
        for sentinel in self.sentinels:
            await sentinel.until_ready(replicas=1, sentinels=len(self.sentinels))

    async def stop(self) -> None:
        for server in (*self.sentinels, self.replica, self.master):
            await server.stop()


@pytest.fixture
async def one_sentinel(tmp_path: Path) -> AsyncIterator[Deployment]:
    deployment = Deployment(tmp_path, sentinels=1)
    try:
        await deployment.start()
        yield deployment
    finally:
        await deployment.stop()


@pytest.fixture
async def three_sentinels(tmp_path: Path) -> AsyncIterator[Deployment]:
    deployment = Deployment(tmp_path, sentinels=3)
    try:
        await deployment.start()
        yield deployment
    finally:
        await deployment.stop()


async def test_nodes_follow_the_master_when_it_dies(
    nodes: Nodes, three_sentinels: Deployment, clients: Any,
) -> None:
    deployment = three_sentinels
    a, b = await nodes(2, deployment.url)
    alice = await clients(a, "alice")
    created = [(await create(b, "alice", "before"))["id"]]
    received = [(await alice.next("notification"))["id"]]
    assert user_messages(a) == 1  # it crossed through the master

    await deployment.master.stop()  # gone: the Sentinels agree and promote the replica
    # Created while the Sentinels have not decided yet: the nodes poll the database.
    for index in range(5):
        created.append((await create(b, "alice", f"during-{index}"))["id"])
        await asyncio.sleep(0.2)
    await until_master(deployment.sentinels, deployment.replica)
    await until(lambda: a.metric("tidings_redis_up") == 1, timeout=20)
    await until(lambda: b.metric("tidings_redis_up") == 1, timeout=20)
    while len(received) < len(created):
        received.append((await alice.next("notification"))["id"])
    # What b could not publish during the failover goes out again through the new master
    # (a reads it again and emits nothing twice).
    await until(lambda: fanout_of(b).backlog == 0)

    before = user_messages(a)
    created.append((await create(b, "alice", "after"))["id"])
    received.append((await alice.next("notification"))["id"])
    assert received == created  # all of them, once each, in order
    # through the new master (a republished message may still be read after `before`)
    assert user_messages(a) >= before + 1
    assert alice.queue("notification").empty()


async def subscribers(server: RedisServer, channel: str) -> int:
    return int((await redis_cli(server.port, "pubsub", "numsub", channel)).split()[1])


async def until_subscribers(server: RedisServer, channel: str, count: int) -> None:
    async def poll() -> None:
        while await subscribers(server, channel) != count:  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), 20)


def direct_fanout(url: str, database: Database) -> RedisFanout:
    return RedisFanout(build_links(url, "", False), FanoutReads(database), Metrics(), prefix="t",
                       max_event_bytes=65_536, poll_s=0.2, heartbeat_s=0.5)


async def test_nodes_go_to_the_master_the_sentinels_name_while_the_old_one_runs_on(
    tmp_path: Path, database: Database,
) -> None:
    """SENTINEL FAILOVER with an old master the Sentinels cannot reconfigure (as across
    a partition; here its REPLICAOF is disabled): it runs on as a master, where a publish
    still succeeds and reaches only those left on it. Both the publishing and the
    subscribed side must follow the Sentinels to the new master."""
    deployment = Deployment(tmp_path, sentinels=1, master_extra=(
        "--rename-command", "REPLICAOF", "", "--rename-command", "SLAVEOF", ""))
    one, two = direct_fanout(deployment.url, database), direct_fanout(deployment.url, database)
    heard = Recorder()
    two.attach(heard)
    try:
        await deployment.start()
        await one.start()
        await two.start()
        assert one.up and two.up
        await two.watch("alice")
        await one.status_changed(StatusChange("before", "alice", "read", None, None))
        await until(lambda: ("before", "read") in heard.statuses)

        answer = await redis_cli(deployment.sentinels[0].port, "sentinel", "failover",
                                 "mymaster")
        assert answer.strip() == "OK"
        await until_master(deployment.sentinels, deployment.replica)
        # Both subscriber connections end on the new master, none stays on the old one.
        await until_subscribers(deployment.replica, "t:u:alice", 1)
        assert await subscribers(deployment.master, "t:u:alice") == 0
        # Every node holds the broadcasts' channel ("t:u:"): once both hold it on the new
        # master, both nodes' links (the publishing one's too) have moved there.
        await until_subscribers(deployment.replica, "t:u:", 2)
        await until(lambda: one.up and two.up, timeout=20)

        # One publish: it goes through the new master, where `two` listens (the old
        # one, still a master, has no subscriber left and would take it without a word).
        await until(lambda: one.publishing)
        await one.status_changed(StatusChange("after", "alice", "read", None, None))
        await until(lambda: ("after", "read") in heard.statuses)
        assert "role:master" in await redis_cli(deployment.master.port, "info", "replication")
    finally:
        await one.close()
        await two.close()
        await deployment.stop()


async def test_the_create_limit_counts_on_the_master_of_the_moment(
    nodes: Nodes, one_sentinel: Deployment,
) -> None:
    deployment = one_sentinel
    one, two = await nodes(2, deployment.url, rate_limit_creates="3/minute")

    async def status(node: Any) -> int:
        async with node.http("limited-producer", "service") as http:
            response = await http.post("/api/notifications", json={
                "user_id": "alice", "type": "t", "title": "t", "message": "m",
                "media": ["in_app"]})
        return int(response.status_code)

    assert [await status(one), await status(two)] == [201, 201]
    # The counters reach the replica before it is promoted.
    assert (await redis_cli(deployment.master.port, "wait", "1", "5000")).strip() == "1"
    assert (await redis_cli(deployment.sentinels[0].port, "sentinel", "failover",
                            "mymaster")).strip() == "OK"
    await until_master(deployment.sentinels, deployment.replica)
    # Counted on the new master: a limiter left on the demoted one would fail to write
    # (read-only replica) and let every creation through.
    assert await status(one) == 201
    assert [await status(two), await status(one)] == [429, 429]


async def test_passwords_reach_the_sentinels_and_the_master(
    nodes: Nodes, tmp_path: Path, clients: Any,
) -> None:
    """The Sentinels' own password comes in the URL, the master's in REDIS_PASSWORD."""
    deployment = Deployment(tmp_path, sentinels=1, password="a-redis-password",
                            sentinel_password="a-sentinel-password")
    assert deployment.url.startswith("redis+sentinel://:a-sentinel-password@")
    try:
        await deployment.start()
        a, b = await nodes(2, deployment.url, redis_password="a-redis-password")
        alice = await clients(a, "alice")
        created = await create(b, "alice")
        assert (await alice.next("notification"))["id"] == created["id"]
        assert user_messages(a) == 1
    finally:
        await deployment.stop()
