"""Faults under load: the database's connections killed mid-load, and the server itself
stopped mid-load and started again on the same database.

What must hold (DESIGN.md section 1, "nothing is lost", and section 5, "never 500"): every
create that answered 201 is stored and reaches its recipient, live or by replay; a create
that could not be written answers 503 ("database unavailable, retry") or, while the server
is going away, fails to connect; none answers 500; and the service recovers by itself.

Every loop here is bounded by a count and by a deadline; everything runs on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import PG_DSN, Client, RunningServer, make_settings, start_server
from tidings.config.settings import Settings

pytestmark = pytest.mark.system

RECIPIENT = "fault-alice"
PRODUCERS = 3
CREATES_PER_PRODUCER = 60
LOAD_DEADLINE_S = 30.0
KILLS = 8
# Answers a create may give while its database or server is failing.
RETRY_LATER = 503


@dataclass
class Load:
    """What the producers sent and heard back."""

    created: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # connection errors, as text
    unexpected: list[str] = field(default_factory=list)  # status and body of any other answer
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def count(self) -> int:
        return sum(self.statuses.values()) + len(self.failures)


async def _produce(url: str, token: str, name: str, load: Load, stop: asyncio.Event,
                   deadline: float) -> None:
    """Sends creates one after another until its count, the deadline or `stop`."""
    async with httpx.AsyncClient(base_url=url, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        for i in range(CREATES_PER_PRODUCER):
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                response = await http.post("/api/notifications", json={
                    "user_id": RECIPIENT, "type": "fault", "title": f"{name} {i}",
                    "message": "under fault"})
            except httpx.TransportError as exc:
                load.failures.append(f"{name} {i}: {type(exc).__name__}: {exc}")
                if stop.is_set():
                    return
                await asyncio.sleep(0.05)  # the server is going away: do not spin
                continue
            finally:
                load.answered.set()
            load.statuses[response.status_code] += 1
            if response.status_code == 201:
                load.created.append(response.json()["id"])
            elif response.status_code != RETRY_LATER:
                load.unexpected.append(f"{response.status_code} {response.text}")


async def _read_inbox(url: str, token: str, load: Load, stop: asyncio.Event,
                      deadline: float) -> None:
    """The recipient reads its inbox meanwhile: reads must fail as cleanly as writes."""
    async with httpx.AsyncClient(base_url=url, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(CREATES_PER_PRODUCER):
            if stop.is_set() or time.monotonic() > deadline:
                return
            response = await http.get("/api/notifications", params={"limit": 5})
            if response.status_code not in (200, RETRY_LATER):
                load.unexpected.append(f"read: {response.status_code} {response.text}")


async def _wait_for_answers(load: Load, count: int, deadline: float) -> None:
    """Until the producers have heard `count` answers in all (or the deadline)."""
    while load.count < count and time.monotonic() < deadline:
        load.answered.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(load.answered.wait(), max(0.0, deadline - time.monotonic()))


async def _terminate_backends(admin: asyncpg.Connection, database: str, deadline: float,
                              load_over: Callable[[], bool] = lambda: True) -> int:
    """Kills every PostgreSQL session of `database` (the server's pooled connections),
    waiting first, until the deadline or the load's end, for one of them to be inside a
    statement or a transaction: a connection killed while idle in the pool is only the
    pool's checkout check's work (tests/test_pool_checkouts.py)."""
    while time.monotonic() < deadline and not load_over():
        busy = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
            " AND pid <> pg_backend_pid() AND state <> 'idle'", database)
        if busy:
            break
    killed = await admin.fetch(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = $1 AND pid <> pg_backend_pid()", database)
    return len(killed)


async def _acknowledge(client: Client, seen: set[str], load: Load,
                       stop: asyncio.Event) -> None:
    """The recipient acks each notification as it arrives (as a client does), until `stop`
    and an empty queue: an ack hit by a fault answers `unavailable`, never anything else."""
    queue = client.queue("notification")
    while not (stop.is_set() and queue.empty()):
        try:
            note = await asyncio.wait_for(queue.get(), 0.2)
        except TimeoutError:
            continue
        seen.add(note["id"])
        answer = await client.call("ack", {"id": note["id"]})
        if not answer["ok"] and answer["error"]["code"] != "unavailable":
            load.unexpected.append(f"ack: {answer}")


async def _received(client: Client, ids: set[str], since: str, seen: set[str]) -> set[str]:
    """The ids among `ids` that reached `client`: `seen` live, else by replay since
    `since`."""
    queue = client.queue("notification")

    def drain() -> None:
        while not queue.empty():
            seen.add(queue.get_nowait()["id"])

    drain()
    if ids - seen:
        answer = await client.call("requestMissedNotifications", {"since": since})
        assert answer["ok"] is True, answer
        # The replay's events precede its ack on the socket, so they are all queued now.
        drain()
    return ids & seen


async def _stored(server: RunningServer, ids: list[str]) -> list[str]:
    """The ids among `ids` that the recipient cannot read back."""
    missing = []
    async with server.http(RECIPIENT) as http:
        for note_id in ids:
            response = await http.get(f"/api/notifications/{note_id}")
            if response.status_code != 200:
                missing.append(f"{note_id}: {response.status_code} {response.text}")
    return missing


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The recipient acks every notification of a steady load: more events per second than
    the default per-socket limit allows, which is not what this test is about."""
    return make_settings(database_url, rate_limit_socket_events="0")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_killed_database_connections_lose_no_created_notification(
    server: RunningServer, connect: Any
) -> None:
    alice = await connect(RECIPIENT)
    since = datetime.now(UTC).isoformat()
    database = server.settings.database_url.rsplit("/", 1)[1]
    load, stop = Load(), asyncio.Event()
    deadline = time.monotonic() + LOAD_DEADLINE_S
    producers = [
        asyncio.create_task(_produce(server.url, server.token(f"fault-svc{n}", "service"),
                                     f"svc{n}", load, stop, deadline))
        for n in range(PRODUCERS)]
    producers.append(asyncio.create_task(
        _read_inbox(server.url, server.token(RECIPIENT), load, stop, deadline)))
    seen: set[str] = set()
    acknowledging = asyncio.create_task(_acknowledge(alice, seen, load, stop))
    admin = await asyncpg.connect(PG_DSN)
    try:
        killed = []
        total = PRODUCERS * CREATES_PER_PRODUCER
        for kill in range(1, KILLS + 1):
            # Kill at points spread over the load, between its first and last answers.
            await _wait_for_answers(load, total * kill // (KILLS + 2), deadline)
            killed.append(await _terminate_backends(
                admin, database, deadline, lambda: all(p.done() for p in producers)))
        await asyncio.gather(*producers)
    finally:
        stop.set()
        await asyncio.gather(*producers, acknowledging, return_exceptions=True)
        await admin.close()
    acknowledging.result()  # it ended by itself, without error

    assert sum(killed) > 0, "no connection of the server was killed: the test tested nothing"
    assert not load.unexpected, load.unexpected
    assert not load.failures, load.failures
    assert load.statuses[201] > 0, load.statuses
    # Recovered: the next create is written (the pool replaces its dead connections).
    async with server.http("fault-svc0", "service") as http:
        after = await http.post("/api/notifications", json={
            "user_id": RECIPIENT, "type": "fault", "title": "after", "message": "recovered"})
    assert after.status_code == 201, after.text
    created = [*load.created, after.json()["id"]]

    assert await _stored(server, created) == []
    assert await _received(alice, set(created), since, seen) == set(created)


async def test_server_stopped_under_load_keeps_every_answered_create(
    database_url: str,
) -> None:
    first = await start_server(make_settings(database_url))
    load, stop = Load(), asyncio.Event()
    deadline = time.monotonic() + LOAD_DEADLINE_S
    producers = [
        asyncio.create_task(_produce(first.url, first.token(f"restart-svc{n}", "service"),
                                     f"svc{n}", load, stop, deadline))
        for n in range(PRODUCERS)]
    try:
        # Stop it mid-load: the producers go on sending while it shuts down.
        await _wait_for_answers(load, PRODUCERS * CREATES_PER_PRODUCER // 3, deadline)
        await first.stop()
        stop.set()
        await asyncio.gather(*producers)
    finally:
        stop.set()
        await asyncio.gather(*producers, return_exceptions=True)
        if not first.task.done():
            await first.stop()

    # A create in flight fails cleanly: refused or cut off, or 503; never a 500.
    assert not load.unexpected, load.unexpected
    assert set(load.statuses) <= {201, RETRY_LATER}, load.statuses
    assert load.statuses[201] > 0, load.statuses

    second = await start_server(make_settings(database_url))
    try:
        assert await _stored(second, load.created) == []
        async with second.http("restart-svc0", "service") as http:
            after = await http.post("/api/notifications", json={
                "user_id": RECIPIENT, "type": "fault", "title": "after", "message": "restarted"})
        assert after.status_code == 201, after.text
    finally:
        await second.stop()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_database_refusing_connections_answers_503_then_recovers(
    server: RunningServer,
) -> None:
    database = server.settings.database_url.rsplit("/", 1)[1]
    note = {"user_id": RECIPIENT, "type": "fault", "title": "t", "message": "m"}
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await _terminate_backends(admin, database, time.monotonic())
        async with server.http("fault-svc0", "service") as http, \
                server.http(RECIPIENT) as reader, server.http() as anon:
            refused = [await http.post("/api/notifications", json=note),
                       await reader.get("/api/notifications"),
                       await reader.get("/api/notifications/preferences")]
            assert [r.status_code for r in refused] == [503, 503, 503], [
                r.text for r in refused]
            assert {r.json()["error"]["code"] for r in refused} == {"unavailable"}
            ready = await anon.get("/ready")
            assert ready.status_code == 503, ready.text
            documented = (await anon.get("/openapi.json")).json()["paths"]["/ready"]["get"]
            assert "503" in documented["responses"]

            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            assert (await anon.get("/ready")).status_code == 200
            created = await http.post("/api/notifications", json=note)
            assert created.status_code == 201, created.text
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()
