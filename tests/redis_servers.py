"""Real `redis-server` processes for the fan-out tests: each test starts its own on a free
loopback port, in a temporary directory, without persistence, and stops it by PID. The
machine's own Redis (6379) is never touched."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
from pathlib import Path

from tests.conftest import free_port

START_TIMEOUT = 10.0


def cluster_port() -> int:
    """A free port whose cluster bus port (the port + 10000) is free and valid too."""
    for _ in range(100):
        port = random.randint(20_000, 50_000)
        with socket.socket() as one, socket.socket() as bus:
            try:
                one.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
            return port
    raise RuntimeError("no free pair of ports for a cluster node")


def redis_binaries_missing() -> str | None:
    """Why these tests cannot run here, or None."""
    for binary in ("redis-server", "redis-cli"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed"
    return None


class RedisServer:
    """One redis-server; `stop` and `start` again keep its port (an outage and a return)."""

    def __init__(self, directory: Path, *, cluster: bool = False, password: str = "") -> None:
        self.port = cluster_port() if cluster else free_port()
        self.directory = directory / f"redis-{self.port}"
        self.directory.mkdir(parents=True)
        self.cluster = cluster
        self.password = password
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.directory)]
        if self.password:
            args += ["--requirepass", self.password]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        self.process = await asyncio.create_subprocess_exec(
            "redis-server", *args, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        await self._until_answering()

    async def _until_answering(self) -> None:
        async def ping() -> bool:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            writer.write(b"PING\r\n")
            await writer.drain()
            line = await reader.readline()
            writer.close()
            # Without the password a server that requires one answers -NOAUTH: it is up.
            return line.startswith((b"+PONG", b"-NOAUTH"))

        async def poll() -> None:
            while not await ping():  # noqa: ASYNC110 - a process we do not control
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), START_TIMEOUT)

    def pause(self) -> None:
        """The process stops answering but its connections stay open (a peer gone
        silent, as behind a dead network path)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        os.kill(self.process.pid, signal.SIGKILL)  # an outage, not a clean shutdown
        await asyncio.wait_for(self.process.wait(), START_TIMEOUT)
        self.process = None


async def create_cluster(servers: list[RedisServer]) -> None:
    """Join started cluster-enabled servers into one cluster of masters."""
    nodes = [f"127.0.0.1:{server.port}" for server in servers]
    process = await asyncio.create_subprocess_exec(
        "redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0",
        "--cluster-yes", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()

    async def until_ok() -> None:
        for server in servers:
            while True:
                check = await asyncio.create_subprocess_exec(
                    "redis-cli", "-p", str(server.port), "cluster", "info",
                    stdout=asyncio.subprocess.PIPE)
                info, _ = await check.communicate()
                if b"cluster_state:ok" in info:
                    break
                await asyncio.sleep(0.1)

    await asyncio.wait_for(until_ok(), 30)
