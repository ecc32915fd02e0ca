"""Clients spread over several nodes, and creates spread over them too.

One ``Pool`` per node (its clients connect to that node only); users go round-robin,
``u0`` to the first node, ``u1`` to the second, ... A create is sent to the nodes in turn,
so most creates land on a node that does not hold the user and must cross Redis.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import psutil

from .loopback import parse_target
from .peers.launch import ServerProcess
from .pool import Pool
from .report import Report, latency_summary
from .tokens import service_token
from .transport import RawTransport


class RoundRobinTransport:
    """A ``Transport`` that sends each request to the next node."""

    def __init__(self, urls: list[str], token: str, connections: int = 16) -> None:
        self._transports = [RawTransport(parse_target(u), token, connections) for u in urls]
        self._next = itertools.cycle(self._transports)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        return await next(self._next).post(path, body)

    async def close(self) -> None:
        for transport in self._transports:
            await transport.close()


class Spread:
    """The pools of one run, one per node."""

    def __init__(self, servers: list[ServerProcess], secret: str, processes: int = 1) -> None:
        self.servers = servers
        self.pools = [
            Pool(parse_target(server.url), secret, processes, []) for server in servers
        ]
        self.transport = RoundRobinTransport([s.url for s in servers], service_token(secret))
        self.users: list[str] = []

    async def __aenter__(self) -> Spread:
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.transport.close()
        for pool in self.pools:
            await pool.close()

    async def connect(self, users: list[str], concurrency: int, report: Report) -> list[str]:
        count = len(self.pools)
        answers = await asyncio.gather(*(
            pool.connect(users[i::count], max(1, concurrency // count))
            for i, pool in enumerate(self.pools)
        ))
        failed = {u for group in answers for a in group for u in a["failed_users"]}
        self.users = [u for u in users if u not in failed]
        report.add(clients=len(users), connected=len(self.users), connect_failed=len(failed))
        return self.users

    async def call_all(self, event: str, payload: Any, timeout_s: float) -> list[dict[str, Any]]:
        groups = await asyncio.gather(*(
            pool.all("call_all", event=event, payload=payload, timeout=timeout_s)
            for pool in self.pools
        ))
        return [answer for group in groups for answer in group]

    async def received(self) -> int:
        totals = await asyncio.gather(*(pool.stats() for pool in self.pools))
        return sum(total["received"] for total in totals)

    async def wait_received(self, expected: int, timeout_s: float) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while (  # noqa: ASYNC110 - the counts live in the worker processes
            loop.time() - started < timeout_s and await self.received() < expected
        ):
            await asyncio.sleep(0.05)
        return loop.time() - started

    async def deliveries(self, expected: set[tuple[str, str]], report: Report) -> None:
        """Loss, duplicates, misrouting and latency over every node's clients."""
        received: set[tuple[str, str]] = set()
        latencies: list[float] = []
        duplicates = misrouted = unexpected = 0
        for pool in self.pools:
            for answer in await pool.all("collect", reset=True):
                for key, user, latency, _id in answer["records"]:
                    if (key, user) in expected:
                        received.add((key, user))
                        latencies.append(latency)
                    else:
                        unexpected += 1
                duplicates += answer["duplicates"]
                misrouted += answer["misrouted"]
        summary = latency_summary(latencies)
        report.add(
            expected=len(expected), received=len(received), lost=len(expected) - len(received),
            duplicates=duplicates, misrouted=misrouted, unexpected=unexpected,
            latency_p50_ms=summary["p50_ms"], latency_p99_ms=summary["p99_ms"],
        )


FANOUT_METRICS = (
    "tidings_fanout_published_total",
    "tidings_fanout_publish_skipped_total",
    "tidings_fanout_received_total",
    "tidings_fanout_dropped_total",
)


async def fanout_counters(url: str) -> dict[str, float]:
    """A Tidings node's fan-out counters from its /metrics (labels summed)."""
    import httpx

    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as client:
        text = (await client.get("/metrics")).text
    totals = dict.fromkeys(FANOUT_METRICS, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of one process and its children, from /proc."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total
