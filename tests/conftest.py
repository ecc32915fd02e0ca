"""Fixtures: a real Tidings server on a loopback port, over SQLite and over PostgreSQL,
with real HTTP and Socket.IO clients. Every test gets its own database."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import hypothesis
import pytest
import socketio
import sqlalchemy as sa
import uvicorn

from tidings.app import create_app
from tidings.config.settings import Settings
from tidings.container import Services, build_services
from tidings.jobs.migrate import upgrade
from tidings.server import bind_sockets, uvicorn_config
from tidings.services.tokens import TokenService
from tidings.store.tables import notification_deliveries, notifications
from tidings.support.tracing import Traces

if TYPE_CHECKING:
    from tests.redis_servers import RedisServer

# Hypothesis: a few examples per property in the developer's run, more under
# `scripts/test.sh --all` (CI), which sets HYPOTHESIS_PROFILE=ci. Fuzz tests take their
# example counts from the loaded profile (`hypothesis.settings.default.max_examples`).
hypothesis.settings.register_profile("dev", max_examples=25, deadline=None)
hypothesis.settings.register_profile("ci", max_examples=100, deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

PG_DSN = os.environ.get("TIDINGS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "test-secret-of-at-least-32-bytes-length!"
EVENT_TIMEOUT = 5.0
# The test servers speak plain HTTP: one TLS context for every test client, instead of
# httpx building one (tens of milliseconds) for each.
PLAIN_HTTP = ssl.create_default_context()


def _pg_available() -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(PG_DSN, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


async def _pg_execute(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_url(name: str) -> str:
    base = PG_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database; each test clones it (CREATE DATABASE ... TEMPLATE),
    which is far faster than migrating per test."""
    if not _pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {PG_DSN} (required under CI=true)")
        pytest.skip("PostgreSQL is not reachable")
    name = f"tidings_tpl_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(_pg_url(name))
        yield name
    finally:
        asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


DATABASES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that takes `database_url` runs on SQLite; those marked `both_databases`
    (what the database changes: SQL, races, claims, partitions, hostile input at the store)
    on PostgreSQL too. A test's own `parametrize("database_url", ...)` wins."""
    if "database_url" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "database_url" in (names.split(",") if isinstance(names, str) else names):
            return
    both = metafunc.definition.get_closest_marker("both_databases") is not None
    metafunc.parametrize("database_url", DATABASES if both else DATABASES[:1],
                         indirect=True)


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "tidings.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"tidings_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": SECRET,
        "host": "127.0.0.1",
        "port": 0,
        "scheduler_interval_s": 0.2,
        "log_level": "warning",
    }
    # The whole suite runs against either Socket.IO transport.
    if os.environ.get("TIDINGS_TEST_TRANSPORT"):
        values["realtime_transport"] = os.environ["TIDINGS_TEST_TRANSPORT"]
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@dataclass
class RunningServer:
    url: str
    settings: Settings
    services: Services
    tokens: TokenService
    server: uvicorn.Server
    task: asyncio.Task[None]

    def token(self, sub: str, *roles: str, ttl: int = 600) -> str:
        return self.tokens.mint(sub, roles, ttl)

    def metric(self, name: str, **labels: str) -> float | None:
        """A sample of this server's metrics, through the registry's public API."""
        return self.services.metrics.registry.get_sample_value(name, labels)

    def http(self, sub: str | None = None, *roles: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.token(sub, *roles)}"} if sub else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10,
                                 verify=PLAIN_HTTP)

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, timeout=10)


async def start_server(settings: Settings, traces: Traces | None = None) -> RunningServer:
    services = build_services(settings, traces)
    config = uvicorn_config(settings)
    config.app = create_app(settings, services)
    server = uvicorn.Server(config)
    sockets = bind_sockets("127.0.0.1", 0)
    port = sockets[0].getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return RunningServer(f"http://127.0.0.1:{port}", settings, services,
                         TokenService(settings), server, task)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    running = await start_server(settings)
    try:
        yield running
    finally:
        await running.stop()


class Client:
    """A python-socketio client that queues every server event for the test to await."""

    def __init__(self, transports: list[str] | None = None) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.transports = transports
        self.events: dict[str, asyncio.Queue[Any]] = {}
        self.sio.on("*", self._record)

    async def _record(self, event: str, *args: Any) -> None:
        self.queue(event).put_nowait(args[0] if args else None)

    def queue(self, event: str) -> asyncio.Queue[Any]:
        return self.events.setdefault(event, asyncio.Queue())

    async def next(self, event: str, timeout: float = EVENT_TIMEOUT) -> Any:
        return await asyncio.wait_for(self.queue(event).get(), timeout)

    async def call(self, event: str, data: Any = None) -> Any:
        return await self.sio.call(event, data, timeout=EVENT_TIMEOUT)

    async def close(self) -> None:
        await self.sio.disconnect()


@pytest.fixture
async def connect(server: RunningServer) -> AsyncIterator[Any]:
    clients: list[Client] = []

    async def _connect(user: str, *, transports: list[str] | None = None,
                       token: str | None = None) -> Client:
        client = Client(transports)
        await client.sio.connect(
            server.url,
            auth={"token": token or server.token(user)},
            transports=transports or ["websocket"],
            wait_timeout=EVENT_TIMEOUT,
        )
        clients.append(client)
        status = await client.next("connectionStatus")
        assert status == {"status": "connected", "user_id": user}
        return client

    yield _connect
    for client in clients:
        await client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def needs_redis() -> None:
    """Skips without the redis-server binaries (fails under CI=true, which must have them)."""
    from tests.redis_servers import redis_binaries_missing  # it imports this module

    missing = redis_binaries_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} (required under CI=true)")
        pytest.skip(missing)


@pytest.fixture
async def redis_server(needs_redis: None, tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A redis-server of the test's own, on a free loopback port, stopped at the end."""
    from tests.redis_servers import RedisServer  # it imports this module

    server = RedisServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()



async def stored_media(server: RunningServer, notification_id: str) -> set[str]:
    """The media a create chose for a copy, as stored: a delivery row each, but for those
    no provider could take, which the copy keeps (`unserved`) instead of a row."""
    async with server.services.db.begin() as conn:
        rows = await conn.execute(
            sa.select(notification_deliveries.c.medium).where(
                notification_deliveries.c.notification_id == notification_id))
        unserved = (await conn.execute(sa.select(notifications.c.unserved).where(
            notifications.c.id == notification_id))).scalar_one_or_none()
    return set(rows.scalars()) | set(unserved.split(",") if unserved else ())
