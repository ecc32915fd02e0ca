"""What Redis costs: ``redis-cost`` (Redis's own CPU for one channel notification to many
subscribers over 2 nodes) and ``redis-connect`` (connect latency of a node with Redis
beside one without).

Redis's CPU is read from ``INFO cpu`` (used_cpu_sys + used_cpu_user) of the redis-server
the tool started itself: the machine's Redis is shared and never read for this. An idle
interval of the same length is measured too, so the server's own housekeeping (its cron
ticks) can be told apart from the notification's cost.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import AsyncExitStack

from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from .loopback import parse_target
from .nodes import cluster
from .report import Report, latency_summary
from .sender import Sender
from .spread import Spread, cpu_seconds
from .stack import (
    DEFAULT_ADMIN_URL,
    info_cpu_seconds,
    node_env,
    redis_server,
    scratch_database,
    started_nodes,
)
from .tokens import user_ids, user_token


async def channel_cost(
    secret: str, subscribers: int, rounds: int, settle_s: float,
    admin_url: str = DEFAULT_ADMIN_URL, channel: str = "news",
) -> Report:
    report = Report("redis-cost", f"one channel notification, {subscribers} subscribers, "
                                  "2 tidings nodes")
    async with cluster("tidings", 2, secret, admin_url) as (servers, redis_url), \
            Spread(servers, secret) as spread:
        users = await spread.connect(user_ids(subscribers), 200, report)
        answers = await spread.call_all("subscribe", {"channels": [channel]}, 120.0)
        report.add(subscribed=sum(a["ok"] for a in answers))
        info = Redis.from_url(redis_url)
        try:
            busy: list[float] = []
            idle: list[float] = []
            walls: list[float] = []
            lost = 0
            node_ms: list[float] = []
            for _ in range(rounds):
                await asyncio.sleep(0.5)  # the previous round's stragglers are done
                sender = Sender(spread.transport, uuid.uuid4().hex[:8])
                redis_before = await info_cpu_seconds(info)
                nodes_before = [cpu_seconds(s.pid) for s in servers]
                started = time.perf_counter()
                await sender.create(None, channel=channel)
                key = next(iter(sender.log.created), None)
                if key is None:
                    report.add(create_error_kinds=dict(sender.log.errors))
                    break
                await spread.wait_received(len(users), settle_s)
                wall = time.perf_counter() - started
                busy.append(1000.0 * (await info_cpu_seconds(info) - redis_before))
                node_ms.append(1000.0 * sum(cpu_seconds(s.pid) - b
                                            for s, b in zip(servers, nodes_before, strict=True)))
                round_report = Report("round", "")
                await spread.deliveries({(key, u) for u in users}, round_report)
                lost += int(round_report.figures["lost"])
                quiet = await info_cpu_seconds(info)
                await asyncio.sleep(wall)  # the same length of time, nothing sent
                idle.append(1000.0 * (await info_cpu_seconds(info) - quiet))
                walls.append(round(1000.0 * wall, 1))
            report.add(
                rounds=len(busy), lost=lost, delivery_wall_ms_each=walls,
                redis_cpu_ms_each=[round(v, 1) for v in busy],
                redis_idle_cpu_ms_each=[round(v, 1) for v in idle],
                redis_cpu_ms_max=max(busy, default=float("nan")),
                nodes_cpu_ms_each=[round(v, 1) for v in node_ms],
            )
        finally:
            await info.aclose()
    return report


async def _connect_status(ws_url: str, token: str) -> tuple[float, ClientConnection]:
    """Seconds from opening the WebSocket to ``connectionStatus``; the open socket."""
    started = time.perf_counter()
    ws = await connect(ws_url, compression=None, proxy=None, ping_interval=None,
                       open_timeout=15, user_agent_header=None)
    async with asyncio.timeout(15):
        await ws.recv()  # Engine.IO open
        await ws.send('40{"token":' + json.dumps(token) + "}")
        while True:
            message = await ws.recv()
            if isinstance(message, str) and message.startswith('42["connectionStatus"'):
                return time.perf_counter() - started, ws
            if message == "2":
                await ws.send("3")
            if isinstance(message, str) and message.startswith("44"):
                raise ConnectionError(message[:80])


async def connect_latency(
    secret: str, clients: int, admin_url: str = DEFAULT_ADMIN_URL
) -> Report:
    """``clients`` connects one at a time to each of two nodes on one database, one with
    REDIS_URL and one without, alternating; the sockets stay open until the end."""
    report = Report("redis-connect", "tidings node with REDIS_URL vs without")
    async with AsyncExitStack() as stack:
        redis = await stack.enter_async_context(redis_server())
        database = await stack.enter_async_context(scratch_database(admin_url))
        with_redis = (await stack.enter_async_context(
            started_nodes("tidings", 1, secret, node_env(database, redis.url))))[0]
        without = (await stack.enter_async_context(
            started_nodes("tidings", 1, secret, node_env(database, ""))))[0]
        targets = {"with_redis": with_redis, "without_redis": without}
        times: dict[str, list[float]] = {name: [] for name in targets}
        sockets: list[ClientConnection] = []
        failed = 0
        try:
            for user in user_ids(clients):
                for name, server in targets.items():
                    ws_url = parse_target(server.url).ws_url
                    try:
                        took, ws = await _connect_status(ws_url, user_token(secret, user))
                    except (OSError, TimeoutError, ConnectionError):
                        failed += 1
                        continue
                    times[name].append(1000.0 * took)
                    sockets.append(ws)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        for name, values in times.items():
            summary = latency_summary(values)
            report.add(**{f"{name}_connected": len(values),
                          f"{name}_p50_ms": summary["p50_ms"],
                          f"{name}_p95_ms": summary["p95_ms"]})
        report.add(
            failed=failed,
            p50_difference_ms=report.figures["with_redis_p50_ms"]
            - report.figures["without_redis_p50_ms"],
            p95_difference_ms=report.figures["with_redis_p95_ms"]
            - report.figures["without_redis_p95_ms"],
        )
    return report
