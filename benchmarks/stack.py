"""What the many-node scenarios start for themselves, and stop by PID afterwards:

- a ``redis-server`` on a free loopback port, without persistence, in a scratch
  directory (never the machine's Redis: these scenarios read its INFO and restart it);
- a fresh PostgreSQL database, migrated with ``tidings migrate``, dropped afterwards
  (nodes must share one store, so SQLite per node would not do);
- N ``tidings serve`` nodes on that Redis and database, or N python-socketio peers with
  ``AsyncRedisManager`` on that Redis.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .peers.launch import LaunchError, ServerProcess, free_port, start_server
from .scratchdb import ADMIN_URL, async_url, scratch_postgres

DEFAULT_ADMIN_URL = ADMIN_URL


class RedisProcess:
    """One redis-server of our own; ``restart`` keeps its port (an outage and a return)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="bench-redis-")
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout_s: float = 10.0) -> None:
        self.process = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", self._dir.name, "--protected-mode", "yes",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise LaunchError(f"redis-server exited with code {self.process.returncode}")
            if await self.ping():
                return
            await asyncio.sleep(0.005)
        raise LaunchError(f"redis-server did not answer on port {self.port}")

    async def ping(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            return (await reader.readline()).startswith(b"+PONG")
        except OSError:
            return False
        finally:
            writer.close()

    async def kill(self) -> None:
        """SIGKILL: an outage, not a clean shutdown."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(self.process.wait(), 10)
        self.process = None

    async def stop(self) -> None:
        await self.kill()
        self._dir.cleanup()


async def info_cpu_seconds(client: object) -> float:
    """Redis's own CPU (used_cpu_sys + used_cpu_user), from INFO cpu."""
    info = await client.info("cpu")  # type: ignore[attr-defined]
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


@asynccontextmanager
async def redis_server() -> AsyncIterator[RedisProcess]:
    server = RedisProcess()
    try:
        await server.start()
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def scratch_database(admin_url: str = DEFAULT_ADMIN_URL) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database; its (asyncpg) URL. Dropped afterwards."""
    async with scratch_postgres(admin_url, "nodes") as url:
        yield async_url(url)  # what the nodes are given


def node_env(database_url: str, redis_url: str) -> dict[str, str]:
    """What every Tidings node of a run gets (``redis_url`` "" = no Redis)."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": "bench",
        "RATE_LIMIT_CREATES": "1000000/second",
        "LOG_LEVEL": "warning",
        "DB_POOL_SIZE": "5",  # PostgreSQL's connections are shared with the rest of the machine
    }


@asynccontextmanager
async def started_nodes(
    kind: str, count: int, jwt_secret: str, env: dict[str, str]
) -> AsyncIterator[list[ServerProcess]]:
    """``count`` servers of ``kind`` (``tidings`` or ``pysio``), each with ``env`` added."""
    servers: list[ServerProcess] = []
    try:
        for _ in range(count):
            servers.append(await start_server(kind, jwt_secret, extra_env=env))
        yield servers
    finally:
        for server in servers:
            server.stop()
