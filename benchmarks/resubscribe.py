"""``resubscribe``: how long a node takes to subscribe again every user it holds after
Redis comes back.

100,000 real sockets are more than this machine's load generator holds beside a server,
so this is measured one level down, on Tidings' ``RedisFanout`` itself, in this process:
the users are registered with ``watch`` as the gateway does for each arriving socket
(before the fan-out starts, so that registering is quick), against a redis-server the
tool started; the server is killed (SIGKILL) and started again on the same port.
Measured from the moment it answers PING again to the moment the node is back on Redis
(``up``: every held user's subscription confirmed by Redis) and Redis itself lists them
all on the subscriber connection (CLIENT LIST ``sub=``).
Wall time includes the fan-out's retry pause (RECONNECT_S, 0.5 s) and, on a shared
machine, waiting for a core; the process's CPU over the same window is reported beside.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.utils import HIREDIS_AVAILABLE

from tidings.domain.notification import InboxChange, Notification, StatusChange
from tidings.realtime.redis.fanout import RedisFanout
from tidings.realtime.redis.links import build_links
from tidings.services.fanout_reads import FanoutReads
from tidings.store.database import Database
from tidings.support.metrics import Metrics

from .report import Report
from .stack import DEFAULT_ADMIN_URL, RedisProcess, info_cpu_seconds, scratch_database


class _Discard:
    """The node's receiving end: nothing is sent during this scenario."""

    async def deliver(self, notifications: Sequence[Notification]) -> None:
        return None

    async def status_changed(self, change: StatusChange) -> None:
        return None

    async def inbox_changed(self, change: InboxChange) -> None:
        return None


async def _subscriptions(client: Redis) -> int:
    """Channel subscriptions Redis holds, all connections together."""
    clients = await client.client_list()
    return sum(int(entry.get("sub", 0)) for entry in clients)


async def _until(condition_s: float, check: object, poll_s: float = 0.005) -> float | None:
    """Seconds until ``check()`` is true, or None after ``condition_s``."""
    started = time.perf_counter()
    while time.perf_counter() - started < condition_s:
        if await check():  # type: ignore[operator]
            return time.perf_counter() - started
        await asyncio.sleep(poll_s)
    return None


async def resubscribe(
    users: int, rounds: int, timeout_s: float, admin_url: str = DEFAULT_ADMIN_URL
) -> Report:
    report = Report("resubscribe", f"RedisFanout holding {users} users, Redis restarted")
    redis = RedisProcess()
    try:
        await redis.start()
        async with scratch_database(admin_url) as url:
            database = Database(url)
            await database.start()
            fanout = RedisFanout(build_links(redis.url, "", False), FanoutReads(database),
                                 Metrics(),
                                 prefix="bench", max_event_bytes=65_536, poll_s=1.0)
            fanout.attach(_Discard())
            try:
                await _measure(fanout, redis, users, rounds, timeout_s, report)
            finally:
                await fanout.close()
                await database.dispose()
    finally:
        await redis.stop()
    return report


async def _measure(fanout: RedisFanout, redis: RedisProcess, users: int, rounds: int,
                   timeout_s: float, report: Report) -> None:
    wanted = users + 1  # and the control channel

    async def all_subscribed() -> bool:
        if not fanout.up:
            return False
        probe = Redis.from_url(redis.url)
        try:
            return await _subscriptions(probe) >= wanted
        finally:
            await probe.aclose()

    # Registered as the gateway does, one `watch` per arriving socket. Before `start`,
    # so the first subscription already goes the way of a return after an outage (all
    # held users at once) instead of 100,000 single SUBSCRIBEs.
    await asyncio.gather(*(fanout.watch(f"u{i}") for i in range(users)))
    started = time.perf_counter()
    await fanout.start()
    first = await _until(timeout_s, all_subscribed)
    report.add(users=users, first_subscribe_s=(time.perf_counter() - started)
               if first is not None else None)
    each: list[float | None] = []
    cpu: list[float] = []
    redis_cpu: list[float] = []
    for _ in range(rounds):
        await redis.kill()
        down = await _until(timeout_s, lambda: _false(fanout.up))
        if down is None:
            report.notes.append("the node did not notice Redis going away")
            break
        await redis.start()  # returns once it answers PING: the clock starts there
        cpu_before = time.process_time()
        took = await _until(timeout_s, all_subscribed)
        # The fan-out runs in this process: its CPU over the window (the probes' share is
        # small), and what the freshly started Redis used, from INFO cpu.
        cpu.append(round(time.process_time() - cpu_before, 3))
        redis_cpu.append(round(await _redis_cpu(redis.url), 3))
        each.append(round(took, 3) if took is not None else None)
        if took is None:
            report.notes.append(f"not all resubscribed within {timeout_s:.0f} s")
            break
    report.add(rounds=len(each), resubscribe_s_each=each, node_cpu_s_each=cpu,
               redis_cpu_s_each=redis_cpu, hiredis_parser=HIREDIS_AVAILABLE,
               resubscribe_s_max=max((v for v in each if v is not None), default=float("nan")))


async def _redis_cpu(url: str) -> float:
    """CPU seconds the (restarted) server used since it started."""
    probe = Redis.from_url(url)
    try:
        return await info_cpu_seconds(probe)
    finally:
        await probe.aclose()


async def _false(value: bool) -> bool:
    return not value
