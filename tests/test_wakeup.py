"""The queue signal across processes: a raise in one instance wakes the waiters of
another, over Redis (standalone, Sentinel, cluster) and over PostgreSQL's LISTEN/NOTIFY;
raises coalesce; and a `tidings worker` on PostgreSQL without Redis is woken by a create
on a serve node instead of waiting for its poll."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import msgpack
import pytest
import redis.asyncio

from tests.conftest import EVENT_TIMEOUT, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server
from tests.redis_servers import RedisServer, create_cluster
from tests.test_delivery_email import add_email
from tests.test_redis_sentinel import Deployment
from tidings import worker_process
from tidings.container import build_core
from tidings.domain.model import utcnow
from tidings.support.metrics import Metrics
from tidings.wakeup import Waiters
from tidings.wakeup.local import LocalSignal
from tidings.wakeup.postgres import PostgresRelay
from tidings.wakeup.redis import RedisRelay
from tidings.wakeup.relayed import RelayedSignal

on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


class Woken:
    """A waiting side that counts its wake-ups."""

    def __init__(self) -> None:
        self.queued = 0
        self.scheduled: list[datetime] = []
        self.event = asyncio.Event()

    def waiters(self) -> Waiters:
        return Waiters(queued=[self._queued], scheduled=[self.scheduled.append])

    def _queued(self) -> None:
        self.queued += 1
        self.event.set()


Build = Callable[[Woken], RelayedSignal]


async def woken_across(build: Build) -> None:
    """Two instances; a burst of raises on the first. The first's own waiters are woken
    at once (and not again by their echo), the second's over the relay."""
    here, there = Woken(), Woken()
    one, two = build(here), build(there)
    await one.start()
    await two.start()
    try:
        assert one.listening and two.listening
        for _ in range(100):
            one.queued()
        await asyncio.wait_for(there.event.wait(), EVENT_TIMEOUT)
        await asyncio.sleep(0.2)  # time for an echo or more messages to arrive
        assert here.queued == 100
        # A burst is one message, or two (one on its way while the rest piled up).
        assert 1 <= there.queued <= 2
        one.scheduled(utcnow())
        assert len(here.scheduled) == 1 and not there.scheduled  # stays in its process
    finally:
        await one.close()
        await two.close()


def over_redis(url: str, *, cluster: bool = False, metrics: Metrics | None = None) -> Build:
    def build(woken: Woken) -> RelayedSignal:
        relay = RedisRelay(url, "", cluster=cluster, prefix="t", metrics=metrics or Metrics())
        return RelayedSignal(woken.waiters(), relay, name="Redis")
    return build


async def test_a_raise_wakes_another_instance_over_redis(redis_server: RedisServer) -> None:
    await woken_across(over_redis(redis_server.url))


@pytest.mark.system  # starts its own Redis servers: CI's tier
async def test_a_raise_wakes_another_instance_through_sentinel(
    needs_redis: None, tmp_path: Path,
) -> None:
    deployment = Deployment(tmp_path, sentinels=1)
    try:
        await deployment.start()
        await woken_across(over_redis(deployment.url))
    finally:
        await deployment.stop()


@pytest.mark.system  # starts its own Redis servers: CI's tier
async def test_a_raise_wakes_another_instance_on_a_cluster(
    needs_redis: None, tmp_path: Path,
) -> None:
    masters = [RedisServer(tmp_path, cluster=True) for _ in range(3)]
    try:
        for master in masters:
            await master.start()
        await create_cluster(masters)
        await woken_across(over_redis(masters[1].url, cluster=True))
    finally:
        for master in masters:
            await master.stop()


async def test_a_redis_that_comes_back_wakes_again(redis_server: RedisServer) -> None:
    there = Woken()
    one = over_redis(redis_server.url)(Woken())
    two = over_redis(redis_server.url)(there)
    await one.start()
    await two.start()
    try:
        await redis_server.stop()
        one.queued()  # lost: the workers poll
        await redis_server.start()

        async def back() -> None:
            while not (one.listening and two.listening):  # noqa: ASYNC110 - no event
                await asyncio.sleep(0.05)

        await asyncio.wait_for(back(), 10)
        there.event.clear()
        one.queued()
        await asyncio.wait_for(there.event.wait(), EVENT_TIMEOUT)
    finally:
        await one.close()
        await two.close()


class Invalidated:
    """A cache's side: what other processes told it to drop, and the whole drops."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []
        self.lost = 0
        self.event = asyncio.Event()

    def waiters(self) -> Waiters:
        return Waiters(invalidated=[self._told], lost=[self._lost])

    def _told(self, scope: str, key: str) -> None:
        self.told.append((scope, key))
        self.event.set()

    def _lost(self) -> None:
        self.lost += 1
        self.event.set()


async def invalidated_across(build: Callable[[Waiters], RelayedSignal]) -> None:
    """An invalidation raised in one instance reaches the other's caches, not its own
    (the raiser dropped its own entry already); repeats while one is on its way merge."""
    here, there = Invalidated(), Invalidated()
    one, two = build(here.waiters()), build(there.waiters())
    await one.start()
    await two.start()
    try:
        one.invalidate("preferences", "alice")
        one.invalidate("preferences", "bob")
        one.queued()

        async def both() -> None:
            while len(there.told) < 2:  # noqa: ASYNC110 - counted by callbacks
                await asyncio.sleep(0.02)

        await asyncio.wait_for(both(), EVENT_TIMEOUT)
        await asyncio.sleep(0.2)  # time for an echo to arrive
        assert sorted(there.told) == [("preferences", "alice"), ("preferences", "bob")]
        assert here.told == [] and here.lost == there.lost == 0
    finally:
        await one.close()
        await two.close()


async def test_an_invalidation_reaches_another_instance_over_redis(
    redis_server: RedisServer,
) -> None:
    def build(waiters: Waiters) -> RelayedSignal:
        relay = RedisRelay(redis_server.url, "", cluster=False, prefix="t", metrics=Metrics())
        return RelayedSignal(waiters, relay, name="Redis")

    await invalidated_across(build)


@on_postgresql
async def test_an_invalidation_reaches_another_instance_over_postgresql(
    database_url: str,
) -> None:
    def build(waiters: Waiters) -> RelayedSignal:
        return RelayedSignal(waiters, PostgresRelay(database_url), name="PostgreSQL")

    await invalidated_across(build)


async def test_caches_are_dropped_when_the_control_connection_comes_back(
    redis_server: RedisServer,
) -> None:
    """Invalidations sent during a break are lost: every cached entry goes."""
    there = Invalidated()
    relay = RedisRelay(redis_server.url, "", cluster=False, prefix="t", metrics=Metrics())
    signal = RelayedSignal(there.waiters(), relay, name="Redis")
    await signal.start()
    try:
        assert signal.listening and there.lost == 0
        await redis_server.stop()
        await redis_server.start()
        await asyncio.wait_for(there.event.wait(), 10)
        assert there.lost == 1
    finally:
        await signal.close()


def test_the_redis_wake_message_is_the_one_the_fan_out_sent_before() -> None:
    """Nodes of the release before, whose fan-out carried wake-ups on `{prefix}:ctl`,
    and of this one wake each other during a rolling upgrade."""
    relay = RedisRelay("redis://127.0.0.1:1", "", cluster=False, prefix="t", metrics=Metrics())
    assert relay.channel == "t:ctl"
    assert relay.decode(msgpack.packb({"v": 1, "o": "an-older-node", "k": "w"})) == {
        "v": 1, "o": "an-older-node", "k": "w"}
    assert relay.decode(msgpack.packb({"v": 1, "o": relay.origin, "k": "w"})) is None  # echo


async def test_what_is_not_a_control_message_is_ignored_and_the_relay_goes_on(
    redis_server: RedisServer,
) -> None:
    """Garbage on the control channel (another program, a corrupted message, another
    version) wakes nothing, drops nothing, and does not stop the listener."""
    woken, dropped = Woken(), []
    waiters = Waiters(queued=[woken._queued], invalidated=[lambda s, k: dropped.append((s, k))])
    relay = RedisRelay(redis_server.url, "", cluster=False, prefix="t", metrics=Metrics())
    signal = RelayedSignal(waiters, relay, name="Redis")
    sender = RelayedSignal(Waiters(), RedisRelay(redis_server.url, "", cluster=False,
                                                 prefix="t", metrics=Metrics()), name="Redis")
    client = redis.asyncio.Redis.from_url(redis_server.url)
    await signal.start()
    await sender.start()
    try:
        for junk in (b"", b"\x00\xff not msgpack", msgpack.packb([1, 2, 3]),
                     msgpack.packb({"v": 2, "o": "x", "k": "w"}),
                     msgpack.packb({"v": 1, "o": "x", "k": "i", "scope": "preferences",
                                    "key": 7}),
                     msgpack.packb({"v": 1, "o": "x", "k": "?"}),
                     b"\xc1", "text with a NUL \x00 and \ud800".encode("utf-8", "surrogatepass")):
            await client.publish("t:ctl", junk)
        sender.invalidate("preferences", "al\x00ice")
        sender.queued()
        await asyncio.wait_for(woken.event.wait(), EVENT_TIMEOUT)
        assert woken.queued == 1 and signal.listening
        assert dropped == [("preferences", "al\x00ice")]
    finally:
        await client.aclose()
        await sender.close()
        await signal.close()


@on_postgresql
async def test_a_raise_wakes_another_instance_over_postgresql(database_url: str) -> None:
    def build(woken: Woken) -> RelayedSignal:
        return RelayedSignal(woken.waiters(), PostgresRelay(database_url), name="PostgreSQL")

    await woken_across(build)


async def test_sqlite_without_redis_wakes_in_process(database_url: str) -> None:
    core = build_core(make_settings(database_url), serve=True)
    try:
        assert isinstance(core.signal, LocalSignal)
    finally:
        await core.stop()


@on_postgresql
async def test_a_create_wakes_a_separate_worker_over_postgresql_without_redis(
    database_url: str,
) -> None:
    handler = ScriptedHandler()
    async with smtp_server(handler) as smtp_port:
        smtp = {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_starttls": False}
        serve = await start_server(make_settings(database_url, workers_in_serve=False, **smtp))
        # The worker polls once a minute: only the wake from the serve node makes it send
        # within the test's wait.
        settings = make_settings(database_url, scheduler_interval_s=60, **smtp)
        ready, stop = asyncio.Event(), asyncio.Event()
        worker = asyncio.create_task(worker_process.run(settings, ready=ready, stop=stop))
        try:
            await asyncio.wait_for(ready.wait(), EVENT_TIMEOUT)
            await add_email(serve, "alice", "alice@example.com")
            # The worker's passes at start are over: it sleeps its poll now (it exposes no
            # event for that), so a create it finds before a minute was woken for.
            await asyncio.sleep(1.0)
            async with serve.http("billing", "service") as http:
                response = await http.post("/api/notifications", json={
                    "user_id": "alice", "type": "invoice", "title": "t", "message": "m",
                    "media": ["in_app", "email"]})
            assert response.status_code == 201

            async def sent() -> None:
                while not handler.received:  # noqa: ASYNC110 - the SMTP fake has no event
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(sent(), EVENT_TIMEOUT)
            assert len(handler.received) == 1
        finally:
            stop.set()
            await asyncio.wait_for(worker, EVENT_TIMEOUT * 2)
            await serve.stop()
