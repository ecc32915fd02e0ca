"""Several nodes on one database and one Redis: what is created or changed on one node
reaches the sockets on another, a node listens only for the users it holds, and a Redis
outage falls back to polling the database without losing anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.conftest import EVENT_TIMEOUT, Client, RunningServer, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server
from tests.redis_servers import RedisServer, create_cluster
from tests.test_delivery_email import add_email
from tidings import worker_process
from tidings.domain.model import utcnow
from tidings.domain.notification import InboxChange, Notification, StatusChange
from tidings.realtime.catchup import CatchUp, Recent
from tidings.realtime.redis import messages as wire
from tidings.realtime.redis.fanout import RedisFanout
from tidings.realtime.redis.links import build_links
from tidings.services.fanout_reads import FanoutReads
from tidings.store.database import Database
from tidings.support.metrics import Metrics

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

Nodes = Callable[..., Awaitable[list[RunningServer]]]


@pytest.fixture(autouse=True)
def _needs_redis(needs_redis: None) -> None:
    """Every test here needs the redis-server binaries (conftest.py's `needs_redis`)."""


@pytest.fixture
async def nodes(database_url: str) -> AsyncIterator[Nodes]:
    """Starts Tidings nodes on the test's database; all are stopped at the end."""
    started: list[RunningServer] = []

    async def _start(count: int, redis_url: str, **overrides: Any) -> list[RunningServer]:
        for _ in range(count):
            settings = make_settings(database_url, redis_url=redis_url,
                                     redis_prefix="t", **overrides)
            started.append(await start_server(settings))
        for node in started:
            await until(lambda node=node: node.metric("tidings_redis_up") == 1)
        return started[-count:]

    yield _start
    for node in started:
        await node.stop()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[RunningServer, str], Awaitable[Client]]]:
    opened: list[Client] = []

    async def _connect(node: RunningServer, user: str) -> Client:
        client = Client()
        await client.sio.connect(node.url, auth={"token": node.token(user)},
                                 transports=["websocket"], wait_timeout=EVENT_TIMEOUT)
        opened.append(client)
        assert await client.next("connectionStatus") == {"status": "connected",
                                                         "user_id": user}
        return client

    yield _connect
    for client in opened:
        await client.close()


async def until(condition: Callable[[], bool], timeout: float = EVENT_TIMEOUT) -> None:
    """Waits (bounded) for a condition that a background task makes true."""
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - metrics and state have no event
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def create(node: RunningServer, user: str, title: str = "hello") -> dict[str, Any]:
    async with node.http("billing", "service") as http:
        response = await http.post("/api/notifications", json={
            "user_id": user, "type": "invoice", "title": title, "message": "m",
            "media": ["in_app"]})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def fanout_of(node: RunningServer) -> RedisFanout:
    fanout = node.services.fanout
    assert isinstance(fanout, RedisFanout)
    return fanout


def user_messages(node: RunningServer) -> float:
    return node.metric("tidings_fanout_received_total", channel="user") or 0.0


async def test_a_client_on_one_node_gets_what_is_created_through_another(
    nodes: Nodes, redis_server: RedisServer, clients: Any,
) -> None:
    a, b = await nodes(2, redis_server.url)
    alice = await clients(a, "alice")
    created = await create(b, "alice")
    received = await alice.next("notification")
    assert received["id"] == created["id"]
    assert received["title"] == "hello"


async def test_status_changes_cross_nodes(
    nodes: Nodes, redis_server: RedisServer, clients: Any,
) -> None:
    a, b = await nodes(2, redis_server.url)
    on_a = await clients(a, "alice")
    on_b = await clients(b, "alice")
    created = await create(b, "alice")
    assert (await on_a.next("notification"))["id"] == created["id"]
    assert (await on_b.next("notification"))["id"] == created["id"]
    ack = await on_b.call("markAsRead", {"id": created["id"]})
    assert ack["ok"] is True
    status = await on_a.next("notificationStatus")
    assert status["id"] == created["id"]
    assert status["status"] == "read"
    # The node where it happened tells its own sockets once, not again through Redis.
    assert (await on_b.next("notificationStatus"))["status"] == "read"
    assert on_b.queue("notificationStatus").empty()


async def test_a_deletion_reaches_the_user_s_sockets_on_every_node(
    nodes: Nodes, redis_server: RedisServer, clients: Any,
) -> None:
    a, b = await nodes(2, redis_server.url)
    on_a = await clients(a, "alice")
    on_b = await clients(b, "alice")
    created = await create(b, "alice")
    async with b.http("alice") as http:
        assert (await http.delete(f"/api/notifications/{created['id']}")).status_code == 204
    for socket in (on_a, on_b):
        assert await socket.next("inboxChanged") == {"action": "deleted",
                                                     "ids": [created["id"]]}
    assert on_b.queue("inboxChanged").empty()  # its own node told it once, not via Redis


async def test_inbox_states_reach_the_user_s_sockets_on_every_node(
    nodes: Nodes, redis_server: RedisServer, clients: Any,
) -> None:
    a, b = await nodes(2, redis_server.url)
    on_a = await clients(a, "alice")
    on_b = await clients(b, "alice")
    created = await create(b, "alice")
    for socket in (on_a, on_b):
        await socket.next("notification")
    async with b.http("alice") as http:
        assert (await http.post("/api/notifications/read-all",
                                json={"type": "invoice"})).json() == {"count": 1}
        assert (await http.post("/api/notifications/seen")).json() == {"count": 1}
        assert (await http.post(f"/api/notifications/{created['id']}/archive")
                ).status_code == 200
        assert (await http.post(f"/api/notifications/{created['id']}/unarchive")
                ).status_code == 200
    for socket in (on_a, on_b):
        read_all = await socket.next("inboxChanged")
        assert read_all["action"] == "read_all" and read_all["type"] == "invoice"
        assert "channel" not in read_all and read_all["before"].endswith("Z")
        seen = await socket.next("inboxChanged")
        assert seen["action"] == "seen" and "before" in seen
        for action in ("archived", "unarchived"):
            assert await socket.next("inboxChanged") == {"action": action,
                                                         "ids": [created["id"]]}
    assert on_b.queue("inboxChanged").empty()  # its own node told it once, not via Redis


async def test_a_node_without_a_socket_of_the_user_reads_nothing_of_theirs(
    nodes: Nodes, redis_server: RedisServer, clients: Any,
) -> None:
    a, b = await nodes(2, redis_server.url)
    alice = await clients(a, "alice")
    before_a, before_b = user_messages(a), user_messages(b)
    for title in ("one", "two", "three"):
        await create(b, "alice", title)
    titles = [(await alice.next("notification"))["title"] for _ in range(3)]
    assert titles == ["one", "two", "three"]
    assert user_messages(a) - before_a == 3
    assert user_messages(b) == before_b  # b published them but holds no socket of alice
    # and nothing went to alice twice (a did not deliver its own echo or a copy)
    assert alice.queue("notification").empty()


async def test_no_gap_between_connect_and_live_delivery(
    nodes: Nodes, redis_server: RedisServer, clients: Any,
) -> None:
    a, b = await nodes(2, redis_server.url)
    for index in range(5):
        # The subscription is confirmed before connectionStatus: a create right after it
        # arrives live, with no replay.
        client = await clients(a, f"newcomer-{index}")
        created = await create(b, f"newcomer-{index}")
        assert (await client.next("notification"))["id"] == created["id"]


async def test_a_user_channel_is_left_after_the_last_socket_goes(
    nodes: Nodes, redis_server: RedisServer, clients: Any,
) -> None:
    a, b = await nodes(2, redis_server.url, redis_unsubscribe_after_s=0)
    alice = await clients(a, "alice")
    await create(b, "alice")
    await alice.next("notification")
    await alice.close()
    await until(lambda: not fanout_of(a).subscribed_users())
    before = user_messages(a)
    await create(b, "alice")
    bob = await clients(a, "bob")  # something a reads after that create, to await
    await create(b, "bob")
    await bob.next("notification")
    assert user_messages(a) == before + 1


async def test_redis_outage_falls_back_to_polling_and_recovers(
    nodes: Nodes, redis_server: RedisServer, clients: Any,
) -> None:
    a, b = await nodes(2, redis_server.url)
    alice = await clients(a, "alice")
    created: list[str] = []
    received: list[str] = []

    async def expect_all() -> None:
        while len(received) < len(created):
            received.append((await alice.next("notification"))["id"])

    async def load() -> None:
        """A small steady create load through the other node; every create answers 201."""
        for index in range(30):
            created.append((await create(b, "alice", f"load-{index}"))["id"])
            await asyncio.sleep(0.03)

    loading = asyncio.create_task(load())
    await until(lambda: len(created) >= 5)
    await redis_server.stop()
    await until(lambda: a.metric("tidings_redis_up") == 0)
    bob = await clients(a, "bob")  # arrives while Redis is away
    await asyncio.wait_for(loading, 30)
    await expect_all()
    async with a.http() as http:
        assert (await http.get("/ready")).status_code == 200
    # A status change on the other node reaches alice by polling too.
    async with b.http("alice") as http:
        assert (await http.put(f"/api/notifications/{created[-1]}/read")).status_code == 200
    status = await alice.next("notificationStatus")
    assert (status["id"], status["status"]) == (created[-1], "read")

    await redis_server.start()
    await until(lambda: a.metric("tidings_redis_up") == 1, timeout=15)
    await until(lambda: b.metric("tidings_redis_up") == 1, timeout=15)
    await until(lambda: fanout_of(b).publishing)
    # What b could not publish during the outage goes out again once Redis is back
    # (alice had it by polling: a reads it, and emits nothing twice); count after that.
    await until(lambda: fanout_of(b).backlog == 0, timeout=15)
    assert fanout_of(a).subscribed_users() == {"alice", "bob"}
    before = user_messages(a)
    created.append((await create(b, "alice", "after"))["id"])
    await expect_all()
    for_bob = await create(b, "bob", "after")
    assert (await bob.next("notification"))["id"] == for_bob["id"]
    assert sorted(received) == sorted(created)  # all of them
    assert len(set(received)) == len(received)  # once each
    assert user_messages(a) == before + 2  # back on Redis, for both
    assert alice.queue("notification").empty()


async def test_sharded_pub_sub_on_a_cluster(
    nodes: Nodes, tmp_path: Path, clients: Any,
) -> None:
    masters = [RedisServer(tmp_path, cluster=True) for _ in range(3)]
    try:
        for master in masters:
            await master.start()
        await create_cluster(masters)
        a, b = await nodes(2, masters[0].url, redis_cluster=True)
        users = [f"user-{index}" for index in range(6)]  # spread over the masters' slots
        sockets = {user: await clients(a, user) for user in users}
        for user in users:
            created = await create(b, user)
            assert (await sockets[user].next("notification"))["id"] == created["id"]
        # A node with no socket of these users read none of their messages.
        assert user_messages(b) == 0
        # Status changes ride the same sharded channels.
        on_b = await clients(b, users[-1])
        assert (await on_b.call("markAsRead", {"id": created["id"]}))["ok"] is True
        status = await sockets[users[-1]].next("notificationStatus")
        assert (status["id"], status["status"]) == (created["id"], "read")
    finally:
        for master in masters:
            await master.stop()


async def test_a_create_wakes_a_separate_worker_whose_status_changes_reach_sockets(
    database_url: str, redis_server: RedisServer, nodes: Nodes, clients: Any,
) -> None:
    handler = ScriptedHandler()
    async with smtp_server(handler) as smtp_port:
        smtp = {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_starttls": False}
        (serve,) = await nodes(1, redis_server.url, workers_in_serve=False, **smtp)
        # The worker polls once a minute: only the wake from the serve node makes it send
        # within the test's wait.
        settings = make_settings(database_url, redis_url=redis_server.url, redis_prefix="t",
                                 scheduler_interval_s=60, **smtp)
        ready, stop = asyncio.Event(), asyncio.Event()
        worker = asyncio.create_task(worker_process.run(settings, ready=ready, stop=stop))
        try:
            await asyncio.wait_for(ready.wait(), EVENT_TIMEOUT)
            await add_email(serve, "alice", "alice@example.com")
            alice = await clients(serve, "alice")
            async with serve.http("billing", "service") as http:
                response = await http.post("/api/notifications", json={
                    "user_id": "alice", "type": "invoice", "title": "t", "message": "m",
                    "media": ["in_app", "email"]})
            assert response.status_code == 201
            created = response.json()
            assert (await alice.next("notification"))["id"] == created["id"]
            status = await alice.next("notificationStatus")
            assert (status["id"], status["status"]) == (created["id"], "delivered")
            assert len(handler.received) == 1
        finally:
            stop.set()
            await asyncio.wait_for(worker, EVENT_TIMEOUT * 2)


async def test_a_notification_too_large_for_a_message_is_read_from_the_database(
    nodes: Nodes, redis_server: RedisServer, clients: Any,
) -> None:
    a, b = await nodes(2, redis_server.url, max_event_bytes=1024)
    alice = await clients(a, "alice")
    async with b.http("billing", "service") as http:
        response = await http.post("/api/notifications", json={
            "user_id": "alice", "type": "invoice", "title": "big", "message": "m" * 4000,
            "media": ["in_app"]})
    assert response.status_code == 201
    received = await alice.next("notification")
    assert (received["id"], received["message"]) == (response.json()["id"], "m" * 4000)


class HeldHandler:
    """A node's receiving end that holds every delivery until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.delivered: list[Notification] = []

    async def deliver(self, notifications: Sequence[Notification]) -> None:
        await self.release.wait()
        self.delivered += notifications

    async def status_changed(self, change: StatusChange) -> None:
        return None

    async def inbox_changed(self, change: InboxChange) -> None:
        return None


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.start()
    yield db
    await db.dispose()


def direct_fanout(redis: RedisServer, db: Database, metrics: Metrics,
                  **options: Any) -> RedisFanout:
    return RedisFanout(build_links(redis.url, "", False), FanoutReads(db), metrics, prefix="t",
                       max_event_bytes=65_536, poll_s=0.2, **options)


async def test_a_full_receive_buffer_drops_and_counts_without_blocking_the_reader(
    redis_server: RedisServer, database: Database,
) -> None:
    metrics = Metrics()
    fanout = direct_fanout(redis_server, database, metrics, buffer_size=2)
    handler = HeldHandler()
    fanout.attach(handler)
    await fanout.start()
    publisher = Redis.from_url(redis_server.url)
    try:
        await fanout.watch("alice")
        # `watch` waits for Redis's confirmation a bounded while only: on a busy machine
        # publish once Redis itself counts the subscriber, or the first messages miss it.
        async with asyncio.timeout(EVENT_TIMEOUT):
            while (await publisher.pubsub_numsub("t:u:alice"))[0][1] < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        sent = 50
        async with publisher.pipeline(transaction=False) as pipe:
            for index in range(sent):
                pipe.publish("t:u:alice", wire.encode("elsewhere", StatusChange(
                    f"n-{index}", "alice", "read", None, None), 1024))
            await pipe.execute()

        def read_all() -> bool:
            return metrics.registry.get_sample_value(
                "tidings_fanout_received_total", {"channel": "user"}) == sent

        await until(read_all)  # the reader went on while the handler was stuck
        dropped = metrics.registry.get_sample_value("tidings_fanout_dropped_total")
        assert dropped is not None and dropped >= sent - 3
    finally:
        handler.release.set()
        await publisher.aclose()
        await fanout.close()


async def test_a_node_starts_and_serves_while_redis_is_down(
    nodes: Nodes, tmp_path: Path, clients: Any, database_url: str,
) -> None:
    absent = RedisServer(tmp_path)  # never started: nothing listens on its port
    node = await start_server(make_settings(database_url, redis_url=absent.url))
    try:
        assert node.metric("tidings_redis_up") == 0
        alice = await clients(node, "alice")
        created = await create(node, "alice")
        assert (await alice.next("notification"))["id"] == created["id"]
        async with node.http() as http:
            assert (await http.get("/ready")).status_code == 200
        assert alice.queue("notification").empty()
    finally:
        await node.stop()


async def test_redis_password_is_used(
    nodes: Nodes, tmp_path: Path, clients: Any,
) -> None:
    guarded = RedisServer(tmp_path, password="a-redis-password")
    await guarded.start()
    try:
        a, b = await nodes(2, guarded.url, redis_password="a-redis-password")
        alice = await clients(a, "alice")
        created = await create(b, "alice")
        assert (await alice.next("notification"))["id"] == created["id"]
        assert user_messages(a) == 1
    finally:
        await guarded.stop()


class Recorder:
    """A node's receiving end that keeps what it is given."""

    def __init__(self) -> None:
        self.notifications: list[str] = []
        self.statuses: list[tuple[str, str]] = []

    async def deliver(self, notifications: Sequence[Notification]) -> None:
        self.notifications += [note.id for note in notifications]

    async def status_changed(self, change: StatusChange) -> None:
        self.statuses.append((change.id, change.status))

    async def inbox_changed(self, change: InboxChange) -> None:
        return None


async def test_polling_goes_on_where_a_full_poll_stopped_and_sends_nothing_twice(
    database: Database, database_url: str,
) -> None:
    node = await start_server(make_settings(database_url))  # one node, no Redis
    try:
        start = utcnow() - timedelta(seconds=1)
        created = [(await create(node, "alice", f"n{index}"))["id"] for index in range(5)]
        async with node.http("alice") as http:
            assert (await http.put(f"/api/notifications/{created[0]}/read")).status_code == 200
    finally:
        await node.stop()
    recorder = Recorder()
    catchup = CatchUp(FanoutReads(database), Recent(), lambda: ["alice", "bob"], limit=2)
    catchup.watermark = start
    for _ in range(5):
        await catchup.poll(recorder)
    assert recorder.notifications == created
    assert recorder.statuses == [(created[0], "read")]


async def test_a_redis_that_stops_answering_is_noticed_and_its_return_too(
    redis_server: RedisServer, database: Database,
) -> None:
    fanout = direct_fanout(redis_server, database, Metrics(), heartbeat_s=0.2)
    fanout.attach(Recorder())
    await fanout.start()
    try:
        assert fanout.up
        redis_server.pause()
        await until(lambda: not fanout.up)
        redis_server.resume()
        await until(lambda: fanout.up, timeout=15)
    finally:
        redis_server.resume()
        await fanout.close()


async def test_sockets_arriving_together_or_within_the_linger_share_one_subscription(
    nodes: Nodes, redis_server: RedisServer, clients: Any,
) -> None:
    a, b = await nodes(2, redis_server.url)
    first, second = await asyncio.gather(clients(a, "alice"), clients(a, "alice"))
    created = await create(b, "alice")
    for client in (first, second):
        assert (await client.next("notification"))["id"] == created["id"]
    await first.close()
    await second.close()
    third = await clients(a, "alice")  # back within the linger: still subscribed
    assert fanout_of(a).subscribed_users() == {"alice"}
    created = await create(b, "alice")
    assert (await third.next("notification"))["id"] == created["id"]
