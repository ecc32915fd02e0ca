"""``nodes``: 1, 2, 4 nodes on one Redis at a fixed total create rate; CPU per node.

For each node count the tool starts its own redis-server, a fresh PostgreSQL database
(Tidings only) and the nodes; the clients are spread over the nodes and each create is
sent to the next node in turn, for a random connected user, so most creates cross Redis.
Each node's CPU seconds (psutil on its PID) are read around the load phase, from the
first create to the last receipt.

What should show: with Tidings a node reads only the messages of users it holds, so
its CPU falls with its share of the traffic; with python-socketio's AsyncRedisManager
every process reads every emit, so its CPU follows the total traffic.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from .peers.launch import ServerProcess
from .report import Report, latency_summary
from .sender import Sender, random_picker
from .spread import FANOUT_METRICS, Spread, cpu_seconds, fanout_counters
from .stack import DEFAULT_ADMIN_URL, node_env, redis_server, scratch_database, started_nodes
from .tokens import user_ids

IDLE_S = 5.0


@asynccontextmanager
async def cluster(
    kind: str, count: int, secret: str, admin_url: str = DEFAULT_ADMIN_URL
) -> AsyncIterator[tuple[list[ServerProcess], str]]:
    """``count`` nodes of ``kind`` on a redis-server of their own (and, for Tidings, a
    fresh PostgreSQL database); the nodes and the Redis URL."""
    async with AsyncExitStack() as stack:
        redis = await stack.enter_async_context(redis_server())
        if kind == "tidings":
            database = await stack.enter_async_context(scratch_database(admin_url))
            env = node_env(database, redis.url)
        else:
            env = {"PEER_REDIS_URL": redis.url}
        servers = await stack.enter_async_context(started_nodes(kind, count, secret, env))
        yield servers, redis.url


async def one_count(
    kind: str, count: int, secret: str, clients: int, rate: float, duration_s: float,
    settle_s: float, admin_url: str = DEFAULT_ADMIN_URL, idle_s: float = IDLE_S,
) -> Report:
    report = Report("nodes", f"{count} {kind} node(s) on one Redis")
    async with cluster(kind, count, secret, admin_url) as (servers, _), \
            Spread(servers, secret) as spread:
        users = await spread.connect(user_ids(clients), 200, report)
        if not users:
            report.notes.append("no client connected")
            return report
        sender = Sender(spread.transport, uuid.uuid4().hex[:8])
        pids = [server.pid for server in servers]
        # What a node spends with its clients connected and nothing sent (heartbeats,
        # the scheduler's and workers' polling), over an idle window before the load.
        idle = [cpu_seconds(pid) for pid in pids]
        await asyncio.sleep(idle_s)
        idle = [cpu_seconds(pid) - b for pid, b in zip(pids, idle, strict=True)]
        before = [cpu_seconds(pid) for pid in pids]
        started = time.perf_counter()
        log = await sender.run_rate(rate, duration_s, random_picker(users))
        await spread.wait_received(len(log.created), settle_s)
        wall = time.perf_counter() - started
        used = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
        created = len(log.created)
        report.add(
            nodes=count,
            offered_rate_per_s=rate,
            created=created,
            create_errors=sum(log.errors.values()),
            phase_s=wall,
            node_cpu_s=[round(u, 3) for u in used],
            node_cpu_pct=[round(100.0 * u / wall, 1) for u in used],
            node_idle_cpu_pct=[round(100.0 * u / idle_s, 1) for u in idle],
            node_cpu_mean_s=sum(used) / count,
            node_cpu_max_s=max(used),
            total_cpu_ms_per_create=1000.0 * sum(used) / created if created else float("nan"),
        )
        http = latency_summary(log.http_ms)
        report.add(http_p50_ms=http["p50_ms"], http_p99_ms=http["p99_ms"])
        if log.errors:
            report.add(create_error_kinds=dict(log.errors.most_common(3)))
        await spread.deliveries(set(log.created.items()), report)
        if kind == "tidings":
            counters = [await fanout_counters(server.url) for server in servers]
            for name in FANOUT_METRICS:
                short = name.removeprefix("tidings_fanout_").removesuffix("_total")
                report.add(**{f"node_{short}": [int(c[name]) for c in counters]})
    return report


async def scaling(
    kind: str, counts: list[int], secret: str, clients: int, rate: float, duration_s: float,
    settle_s: float, admin_url: str = DEFAULT_ADMIN_URL, idle_s: float = IDLE_S,
) -> list[Report]:
    """One run per node count; each report also carries its per-node CPU over the
    single node's (the issue's target: at most 1.2)."""
    reports: list[Report] = []
    for count in counts:
        report = await one_count(kind, count, secret, clients, rate, duration_s, settle_s,
                                 admin_url, idle_s)
        print(report.table(), flush=True)
        reports.append(report)
    base = next((r for r in reports if r.figures.get("nodes") == 1), None)
    if base is not None:
        one = float(base.figures["node_cpu_max_s"])
        for report in reports:
            if "node_cpu_max_s" in report.figures and one > 0:
                report.add(node_cpu_max_over_one_node=report.figures["node_cpu_max_s"] / one)
    return reports
