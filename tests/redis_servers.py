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

    def __init__(self, directory: Path, *, cluster: bool = False, password: str = "",
                 replica_of: RedisServer | None = None, extra: tuple[str, ...] = ()) -> None:
        self.port = cluster_port() if cluster else free_port()
        self.directory = directory / f"redis-{self.port}"
        self.directory.mkdir(parents=True)
        self.cluster = cluster
        self.password = password
        self.replica_of = replica_of
        self.extra = extra  # more arguments for redis-server
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arguments(self) -> list[str]:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.directory)]
        if self.password:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
        return args + list(self.extra)

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            "redis-server", *self.arguments(), stdout=asyncio.subprocess.DEVNULL,
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


async def redis_cli(port: int, *command: str, password: str = "") -> str:
    """One command through redis-cli (what an operator would type); its raw answer."""
    auth = ["--no-auth-warning", "-a", password] if password else []
    process = await asyncio.create_subprocess_exec(
        "redis-cli", "-p", str(port), *auth, "--raw", *command,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    return output.decode()


class SentinelServer(RedisServer):
    """A `redis-server --sentinel` watching `master` under `service`. Quick timings: a
    master is taken for down after 1 s without an answer."""

    def __init__(self, directory: Path, master: RedisServer, *, service: str = "mymaster",
                 quorum: int = 1, password: str = "") -> None:
        super().__init__(directory)
        self.sentinel_password = password  # the Sentinel's own (`requirepass`)
        self.master = master
        self.service = service
        self.quorum = quorum

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def arguments(self) -> list[str]:
        # Sentinel rewrites its configuration file: it must be a file of its own.
        config = self.directory / "sentinel.conf"
        lines = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.directory}",
                 f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} {self.quorum}",
                 f"sentinel down-after-milliseconds {self.service} 1000",
                 f"sentinel failover-timeout {self.service} 10000",
                 f"sentinel parallel-syncs {self.service} 1"]
        if self.master.password:
            lines.append(f"sentinel auth-pass {self.service} {self.master.password}")
        if self.sentinel_password:
            lines += [f"requirepass {self.sentinel_password}",
                      f"sentinel sentinel-pass {self.sentinel_password}"]
        config.write_text("\n".join(lines) + "\n")
        return [str(config), "--sentinel"]

    async def master_port(self) -> int:
        answer = await redis_cli(self.port, "sentinel", "get-master-addr-by-name",
                                 self.service, password=self.sentinel_password)
        return int(answer.split()[1])

    async def until_ready(self, replicas: int, sentinels: int) -> None:
        """Until this Sentinel sees the master's replicas, in sync, and the other
        Sentinels: a failover can then succeed."""
        async def poll() -> None:
            while True:
                listing = await redis_cli(self.port, "sentinel", "replicas", self.service,
                                          password=self.sentinel_password)
                master = await redis_cli(self.port, "sentinel", "master", self.service,
                                         password=self.sentinel_password)
                fields = master.split()
                others = int(fields[fields.index("num-other-sentinels") + 1])
                up = listing.count("master-link-status\nok")
                if up >= replicas and others >= sentinels - 1:
                    return
                await asyncio.sleep(0.1)

        await asyncio.wait_for(poll(), 30)


def sentinel_url(sentinels: list[SentinelServer]) -> str:
    hosts = ",".join(sentinel.address for sentinel in sentinels)
    password = sentinels[0].sentinel_password
    auth = f":{password}@" if password else ""
    return f"redis+sentinel://{auth}{hosts}/{sentinels[0].service}"


async def until_master(sentinels: list[SentinelServer], server: RedisServer) -> None:
    """Until every Sentinel names `server` as the master (a failover has completed)."""
    async def poll() -> None:
        for sentinel in sentinels:
            while await sentinel.master_port() != server.port:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        while "role:master" not in await redis_cli(  # noqa: ASYNC110
                server.port, "info", "replication"):
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), 30)


async def slot_owner(servers: list[RedisServer], slot: int) -> RedisServer:
    """The master of `servers` that owns `slot`, as the first one sees it."""
    shards = await redis_cli(servers[0].port, "cluster", "slots")
    lines = shards.split()
    # --raw prints each range as: start, end, host, port, id (then the replicas).
    for index in range(0, len(lines) - 4):
        if lines[index + 2] == "127.0.0.1" and lines[index].isdigit() \
                and lines[index + 1].isdigit() \
                and int(lines[index]) <= slot <= int(lines[index + 1]):
            port = int(lines[index + 3])
            return next(server for server in servers if server.port == port)
    raise AssertionError(f"no master owns slot {slot}")


async def move_slot(servers: list[RedisServer], slot: int, source: RedisServer,
                    target: RedisServer) -> None:
    """Hand `slot` (which holds no keys) from `source` to `target`, the way
    `redis-cli --cluster reshard` does: importing, migrating, then the new owner told to
    every master."""
    source_id = (await redis_cli(source.port, "cluster", "myid")).strip()
    target_id = (await redis_cli(target.port, "cluster", "myid")).strip()
    steps = [(target, "importing", source_id), (source, "migrating", target_id)]
    others = [server for server in servers if server not in (target, source)]
    steps += [(server, "node", target_id) for server in (target, source, *others)]
    for server, state, node in steps:
        answer = await redis_cli(server.port, "cluster", "setslot", str(slot),
                                 state, node)
        assert answer.strip() == "OK", answer


async def add_node(servers: list[RedisServer], new: RedisServer) -> None:
    """Join a started, empty cluster-enabled server to the cluster as a master without
    slots (`redis-cli --cluster add-node`), and wait until every master knows it."""
    process = await asyncio.create_subprocess_exec(
        "redis-cli", "--cluster", "add-node", f"127.0.0.1:{new.port}",
        f"127.0.0.1:{servers[0].port}", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()

    async def until_known() -> None:
        for server in (*servers, new):
            while True:
                nodes = await redis_cli(server.port, "cluster", "nodes")
                if nodes.count(" master ") + nodes.count("myself,master") >= len(servers) + 1:
                    break
                await asyncio.sleep(0.1)

    await asyncio.wait_for(until_known(), 30)
