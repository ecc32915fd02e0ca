"""Losing a node behind the balancer loses nothing: three `tidings serve` processes and a
`tidings worker` on one PostgreSQL database and one Redis, behind an nginx run from
deploy/nginx.conf (only its ports and paths changed), 300 Socket.IO clients connected
through nginx while a producer creates steadily. One node is killed with SIGKILL; its
clients reconnect through nginx to the others, replay with `requestMissedNotifications`,
and every notification reaches every client at least once.

The figures (reconnect times, duplicates) are printed (`pytest -s`), not asserted beyond
the 5 s bound; docs/OPERATIONS.md ("Losing a node") records them."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
import httpx
import pytest
import socketio

from tests.conftest import SECRET, RunningServer, free_port, make_settings
from tests.redis_servers import RedisServer, redis_binaries_missing

# The official JavaScript client's contract script and its `node` fixture; the script
# needs of a server only what Cluster offers too (url, token, http).
from tests.test_js_client import _run_contract as run_js_contract
from tests.test_js_client import node  # noqa: F401
from tidings.services.tokens import TokenService

pytestmark = [pytest.mark.system,
              pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)]

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
NODES = 3
USERS = 50
SOCKETS_PER_USER = 6  # 300 clients
POLLING_CLIENTS = 12  # start with long-polling, then upgrade; the rest WebSocket only
SOURCE_ADDRESSES = 30  # nginx hashes on the client address: spread clients over nodes
CREATES = 40
KILL_AFTER = 15
CREATE_EVERY = 0.15
START_TIMEOUT = 30.0
RECONNECT_BOUND = 5.0
DELIVERY_TIMEOUT = 20.0


def binary(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (required under CI=true)")
        pytest.skip(f"{name} is not installed")
    return path


class Processes:
    """Subprocesses of this test, each stopped by its PID at the end (SIGTERM, then
    SIGKILL), whatever happened; their output goes to files for the failure report."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[tuple[str, asyncio.subprocess.Process]] = []

    async def start(self, name: str, *argv: str, env: dict[str, str] | None = None
                    ) -> asyncio.subprocess.Process:
        log = (self.directory / f"{name}.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=self.directory, stdin=asyncio.subprocess.DEVNULL,
            stdout=log, stderr=asyncio.subprocess.STDOUT)
        log.close()
        self.started.append((name, process))
        return process

    def output(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")[-3000:]

    async def stop_all(self) -> None:
        for _name, process in reversed(self.started):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for _name, process in reversed(self.started):
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def nginx_config(prefix: Path, listen: int, nodes: list[int]) -> Path:
    """deploy/nginx.conf with this test's ports: the configuration under test, not a copy."""
    text = NGINX_CONF.read_text()
    servers = "".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n"
                      for port in nodes)
    text, replaced = re.subn(r"(?:^ *server 127\.0\.0\.1:\d+ [^;\n]*;\n)+", servers, text,
                             flags=re.M)
    assert replaced == 1, "deploy/nginx.conf no longer lists its upstream servers together"
    assert "listen 8080;" in text and "worker_processes auto;" in text
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    text = text.replace("worker_processes auto;", "worker_processes 1;")
    (prefix / "tmp").mkdir(parents=True)
    path = prefix / "nginx.conf"
    path.write_text(text)
    return path


async def until(check: Any, what: str | Callable[[], str], timeout: float = START_TIMEOUT
                ) -> None:
    async def poll() -> None:
        # Processes we do not control, and a client library that signals no upgrade.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what() if callable(what) else what}")


async def answers(url: str, expect: str = "") -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            response = await client.get(url)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and expect in response.text


async def metric_of(port: int, name: str) -> int:
    """One unlabelled sample of a node's /metrics, read from the node directly."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    assert found, f"{name} is missing from /metrics"
    return int(float(found.group(1)))


class Tracked:
    """One reconnecting python-socketio client that replays from the last notification it
    saw on every `connectionStatus`, as the contract asks of clients."""

    def __init__(self, user: str, address: str, transports: list[str], since: datetime
                 ) -> None:
        self.user = user
        self.transports = transports
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(address, 0)))
        # The library's default back-off (first retry after 0.5-1.5 s): what users run.
        self.sio = socketio.AsyncClient(http_session=self.session)
        self.last = since
        self.ids: list[str] = []
        self.seqs: set[int] = set()
        self.expected: set[int] | None = None
        self.complete = asyncio.Event()
        self.connected = asyncio.Event()
        self.disconnected_at: float | None = None
        self.gone = asyncio.Event()
        self.reconnected = asyncio.Event()
        self.reconnected_at: float | None = None
        self.replayed = 0
        # Replay starts from the last notification seen before the connection dropped: a
        # live one may arrive on the new connection before its `connectionStatus`, and
        # must not move the starting point past what was missed meanwhile.
        self.since = since
        self.awaiting_status = False
        self.early = 0  # notifications received between a reconnect and its status
        self.sio.on("connectionStatus", self._on_status)
        self.sio.on("notification", self._on_notification)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("connect", self._on_connect)

    async def connect(self, url: str, token: str) -> None:
        await self.sio.connect(url, auth={"token": token}, transports=self.transports,
                               wait_timeout=15)
        await asyncio.wait_for(self.connected.wait(), 15)

    async def _on_status(self, data: dict[str, Any]) -> None:
        assert data == {"status": "connected", "user_id": self.user}
        if self.disconnected_at is not None and self.reconnected_at is None:
            self.reconnected_at = time.monotonic()
            self.reconnected.set()
        self.awaiting_status = False
        self.connected.set()
        await self.sio.emit("requestMissedNotifications", {"since": self.since.isoformat()},
                            callback=self._on_replayed)

    def _on_replayed(self, answer: dict[str, Any]) -> None:
        assert answer.get("ok") is True, answer
        self.replayed += int(answer["count"])

    def _on_connect(self) -> None:
        self.awaiting_status = True

    def _on_notification(self, data: dict[str, Any]) -> None:
        self.early += self.awaiting_status
        self.ids.append(data["id"])
        self.seqs.add(int(data["data"]["seq"]))
        self.last = max(self.last, datetime.fromisoformat(data["created_at"]))
        self.check()

    def _on_disconnect(self, *_reason: Any) -> None:
        self.since = self.last
        if self.disconnected_at is None:
            self.disconnected_at = time.monotonic()
            self.gone.set()

    def check(self) -> None:
        if self.expected is not None and self.expected <= self.seqs:
            self.complete.set()

    @property
    def duplicates(self) -> int:
        return len(self.ids) - len(set(self.ids))

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.sio.disconnect(), 5)
        finally:
            await self.session.close()


class Producer:
    """Creates one notification for every user every CREATE_EVERY seconds through the
    balancer, as a producer should: an `Idempotency-Key` per create, retried on a 502/503
    or a broken connection (a request in flight to the killed node)."""

    def __init__(self, url: str, token: str, users: list[str]) -> None:
        self.client = httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10,
            transport=httpx.AsyncHTTPTransport(local_address="127.0.2.1"))
        self.users = users
        self.confirmed: set[int] = set()
        self.retries = 0
        self.halfway = asyncio.Event()

    async def run(self) -> None:
        for seq in range(CREATES):
            await self.create(seq)
            if seq + 1 == KILL_AFTER:
                self.halfway.set()
            await asyncio.sleep(CREATE_EVERY)

    async def create(self, seq: int) -> None:
        body = {"user_ids": self.users, "type": "loss.test", "title": f"n{seq}",
                "message": "", "media": ["in_app"], "data": {"seq": seq}}
        for _attempt in range(20):
            try:
                response = await self.client.post(
                    "/api/notifications", json=body,
                    headers={"Idempotency-Key": f"loss-{seq}"})
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code not in (502, 503, 504):
                assert response.status_code == 202, response.text
                self.confirmed.add(seq)
                return
            self.retries += 1
            await asyncio.sleep(0.2)
        pytest.fail(f"create {seq} kept failing through the balancer")


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    missing = redis_binaries_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} (required under CI=true)")
        pytest.skip(missing)
    server = RedisServer(tmp_path)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


@dataclass
class Cluster:
    """Tidings nodes and a worker on one database and one Redis, behind nginx at `url`."""

    url: str
    ports: list[int]
    nodes: list[asyncio.subprocess.Process]
    worker: asyncio.subprocess.Process
    processes: Processes
    tokens: TokenService

    def token(self, sub: str, *roles: str) -> str:
        return self.tokens.mint(sub, roles, 600)

    def http(self, sub: str, *roles: str) -> httpx.AsyncClient:
        """A client of the API through the balancer, as `sub` (what RunningServer offers)."""
        return httpx.AsyncClient(base_url=self.url, timeout=10,
                                 headers={"Authorization": f"Bearer {self.token(sub, *roles)}"})


@pytest.fixture
async def cluster(database_url: str, redis_url: str, tmp_path: Path
                  ) -> AsyncIterator[Callable[[int], Awaitable[Cluster]]]:
    """Starts `count` nodes (`python -m tidings serve`, WORKERS_IN_SERVE=false), a
    `tidings worker` and nginx, on a freshly migrated database; all stopped by PID."""
    nginx = binary("nginx")
    processes = Processes(tmp_path)

    async def start(count: int) -> Cluster:
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
               "REDIS_PREFIX": "loss", "JWT_SECRET": SECRET, "WORKERS_IN_SERVE": "false",
               "LOG_LEVEL": "warning", "SCHEDULER_INTERVAL": "0.2",
               "TRUSTED_PROXIES": "127.0.0.1", "HOST": "127.0.0.1"}
        if os.environ.get("TIDINGS_TEST_TRANSPORT"):
            env["REALTIME_TRANSPORT"] = os.environ["TIDINGS_TEST_TRANSPORT"]
        python = [sys.executable, "-m", "tidings"]

        migrate = await processes.start("migrate", *python, "migrate", env=env)
        assert await asyncio.wait_for(migrate.wait(), 120) == 0, processes.output("migrate")

        ports = [free_port() for _ in range(count)]
        nodes = [await processes.start(f"node{index}", *python, "serve", env={
            **env, "WEBSOCKET_PORT": str(port)}) for index, port in enumerate(ports)]
        worker = await processes.start("worker", *python, "worker", env=env)
        for index, port in enumerate(ports):
            await until(lambda port=port: answers(f"http://127.0.0.1:{port}/metrics",
                                                  "tidings_redis_up 1.0"),
                        lambda index=index: f"node{index} ready and on Redis: "
                        + processes.output(f"node{index}"))

        listen = free_port()
        conf = nginx_config(tmp_path / "nginx", listen, ports)
        await processes.start("nginx", nginx, "-p", str(conf.parent), "-e", "stderr",
                              "-c", str(conf), "-g", "daemon off;")
        url = f"http://127.0.0.1:{listen}"
        await until(lambda: answers(f"{url}/health"),
                    lambda: "nginx: " + processes.output("nginx"))
        return Cluster(url, ports, nodes, worker, processes,
                       TokenService(make_settings(database_url)))

    try:
        yield start
    finally:
        await processes.stop_all()


async def test_killing_a_node_loses_no_notification(
    cluster: Callable[[int], Awaitable[Cluster]]
) -> None:
    clients: list[Tracked] = []
    async with AsyncExitStack() as stack:

        async def close_clients() -> None:
            await asyncio.gather(*(client.close() for client in clients),
                                 return_exceptions=True)

        stack.push_async_callback(close_clients)
        running = await cluster(NODES)
        url, ports, nodes, worker = running.url, running.ports, running.nodes, running.worker
        processes, tokens = running.processes, running.tokens

        users = [f"user{index}" for index in range(USERS)]
        since = datetime.now(UTC)
        for index in range(USERS * SOCKETS_PER_USER):
            transports = ["polling", "websocket"] if index < POLLING_CLIENTS else ["websocket"]
            clients.append(Tracked(users[index % USERS],
                                   f"127.0.1.{index % SOURCE_ADDRESSES + 1}", transports,
                                   since))
        gate = asyncio.Semaphore(50)

        async def connect(client: Tracked) -> None:
            async with gate:
                await client.connect(url, tokens.mint(client.user, (), 600))

        await asyncio.gather(*(connect(client) for client in clients))

        async def upgraded() -> bool:
            return all(client.sio.transport() == "websocket" for client in clients)

        await until(upgraded, "the polling clients to upgrade", 15)
        held = [await metric_of(port, "tidings_connections") for port in ports]
        assert sum(held) == len(clients), held

        producer = Producer(url, tokens.mint("producer", ("service",), 600), users)
        producing = asyncio.create_task(producer.run())
        stack.callback(producing.cancel)
        await asyncio.wait_for(producer.halfway.wait(), 30)

        # The node the producer's requests go to, so a create may be in flight when it
        # dies; the busiest node if that one holds too few clients to measure.
        created = [await metric_of(port, "tidings_notifications_created_total")
                   for port in ports]
        victim = max(range(NODES), key=lambda index: created[index])
        if held[victim] < len(clients) // 10:
            victim = max(range(NODES), key=lambda index: held[index])
        killed_at = time.monotonic()
        os.kill(nodes[victim].pid, signal.SIGKILL)
        gone = [asyncio.ensure_future(client.gone.wait()) for client in clients]
        try:
            async with asyncio.timeout(RECONNECT_BOUND):
                for _, next_gone in zip(range(held[victim]), asyncio.as_completed(gone),
                                        strict=False):
                    await next_gone
        except TimeoutError:
            pytest.fail("the killed node's clients did not notice within "
                        f"{RECONNECT_BOUND} s")
        finally:
            for waiting in gone:
                waiting.cancel()
        victims = [client for client in clients if client.disconnected_at is not None]
        assert len(victims) == held[victim]
        try:
            await asyncio.wait_for(asyncio.gather(
                *(client.reconnected.wait() for client in victims)),
                RECONNECT_BOUND - (time.monotonic() - killed_at))
        except TimeoutError:
            late = sum(not client.reconnected.is_set() for client in victims)
            pytest.fail(f"{late} of {len(victims)} clients did not reconnect within "
                        f"{RECONNECT_BOUND} s of the kill")

        await producing
        for client in clients:
            client.expected = set(producer.confirmed)
            client.check()
        try:
            await asyncio.wait_for(asyncio.gather(
                *(client.complete.wait() for client in clients)), DELIVERY_TIMEOUT)
        except TimeoutError:
            missing = {client.user: sorted(producer.confirmed - client.seqs)
                       for client in clients if not client.complete.is_set()}
            pytest.fail(f"notifications missing on {len(missing)} clients: "
                        f"{dict(list(missing.items())[:5])}")
        assert len(producer.confirmed) == CREATES
        assert worker.returncode is None, processes.output("worker")
        assert all(node.returncode is None for index, node in enumerate(nodes)
                   if index != victim)

        delays = sorted(client.reconnected_at - killed_at for client in victims
                        if client.reconnected_at is not None)
        noticed_after = max(client.disconnected_at - killed_at for client in victims
                            if client.disconnected_at is not None)
        received = sum(len(client.ids) for client in clients)
        print(f"\nnode loss: {len(clients)} clients over {NODES} nodes {held}, node{victim} "
              f"killed holding {len(victims)}, all noticed within {noticed_after:.2f} s; "
              f"reconnected through nginx: median "
              f"{statistics.median(delays):.2f} s, p95 {delays[int(len(delays) * .95)]:.2f} s, "
              f"max {delays[-1]:.2f} s (goal 2 s); {CREATES} creates x {USERS} users, "
              f"{received} notifications received, "
              f"{sum(client.duplicates for client in clients)} duplicates by id, "
              f"{sum(client.replayed for client in victims)} replayed to the reconnected, "
              f"{producer.retries} create retries, "
              f"{sum(client.early for client in clients)} live before connectionStatus")


async def test_official_js_client_starts_on_polling_through_nginx(
    cluster: Callable[[int], Awaitable[Cluster]], node: str,  # noqa: F811
) -> None:
    """socket.io-client with its default start (long-polling, then the upgrade) through
    the balancer: every polling request of the session and the upgrade reach one node."""
    running = await cluster(2)
    result, created = await run_js_contract(cast(RunningServer, running), node)
    assert result["ok"] is True
    assert result["firstTransport"] == "polling"
    assert result["upgradedTo"] == "websocket"
    assert result["transportAtEnd"] == "websocket"
    assert result["notification"] == created
