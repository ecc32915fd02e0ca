"""What escalation costs (DESIGN section 12), in CPU time, so a shared machine does not
distort it: ``create-cost`` and ``step-cost``.

``create-cost``: single ``POST /api/notifications`` at a fixed offered rate on a `tidings
serve` with its workers on (the default deployment), in-app creates to 1,000 users, no
client connected. ``--variant plain`` names a type outside the catalogue (the same request
on any build); ``escalated`` names a catalogued type carrying two steps (email after 1 h
unless seen, email and push after 2 h unless read), so every create also writes two step
rows and wakes the escalation loop; neither step falls due within the run. Figure: the
server's CPU (and on PostgreSQL its backends') per create over the send phase, after an
unmeasured warm-up at the same rate.

``step-cost``: ``--count`` notifications are queued through the batch endpoint on a serve
whose workers are off, then ONE `tidings worker` runs them to the loopback SMTP sink.
``--variant email``: each notification's own medium is email. ``escalated``: its own medium
is in-app and one step (after 1 s, unless seen) adds the email; the worker starts once
every step is due, so it runs them all at once, then sends the emails they wrote. Figure:
the worker's CPU per notification, less its own start-up (a worker started and left idle
on the same database first); the difference of the variants is the CPU of a step.
"""

from __future__ import annotations

import asyncio
import json
import time

import jwt
import psutil
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from .deliverystack import (
    BATCH_ITEMS,
    Config,
    Stack,
    _count,
    _env,
    _seed_contacts,
    _spawn,
    _stack,
    _stop,
    _tidings,
)
from .peers.launch import LaunchError
from .report import Report
from .scratchdb import async_url

CREATE_VARIANTS = ("plain", "escalated")
STEP_VARIANTS = ("email", "escalated")
CHANNEL = "bench"
TYPE_STEPS = [{"after_seconds": 3600, "unless": "seen", "media": ["email"]},
              {"after_seconds": 7200, "unless": "read", "media": ["email", "push"]}]


def _admin_token(secret: str) -> str:
    claims = {"sub": "bench-admin", "roles": ["admin"], "exp": int(time.time()) + 6 * 3600}
    return jwt.encode(claims, secret, algorithm="HS256")


def _cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


async def _backends(db_url: str) -> list[int]:
    """PostgreSQL's backend pids serving the run's database (none on SQLite)."""
    if not db_url.startswith("postgres"):
        return []
    engine = create_async_engine(async_url(db_url))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"))
            return [int(pid) for (pid,) in rows]
    finally:
        await engine.dispose()


def _db_url(stack: Stack) -> str:
    return async_url(stack.db_url) if stack.db_url.startswith("postgres") else stack.db_url


async def _catalogue(stack: Stack, secret: str, type_: str) -> None:
    """The escalated variant's type: two steps that do not fall due within the run."""
    from .transport import RawTransport

    admin = RawTransport(stack.transport.target, _admin_token(secret), 1)
    try:
        body = json.dumps({"name": {"en": "Bench"}, "escalation": TYPE_STEPS}).encode()
        status, payload = await admin.send("PUT", f"/api/admin/types/{CHANNEL}/{type_}", body)
        if status != 200:
            raise RuntimeError(f"PUT type: HTTP {status} {payload[:300]!r}")
    finally:
        await admin.close()


async def _send(stack: Stack, rate: float, count: int, type_: str, first: int) -> int:
    """``count`` single creates at ``rate``/s, open loop; returns how many failed."""
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        body = json.dumps({"user_id": f"c{i % 1000}", "channel": CHANNEL, "type": type_,
                           "title": "bench", "message": "m", "media": ["in_app"]}).encode()
        status, _ = await stack.transport.post("/api/notifications", body)
        if status != 201:
            errors += 1

    start = time.monotonic() + 0.05
    tasks = []
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(first + i)))
    await asyncio.gather(*tasks)
    return errors


async def create_cost(config: Config, variant: str, rate: float, duration_s: float,
                      warmup_s: float = 3.0) -> Report:
    """Server CPU per single create at ``rate``/s, with or without a type's escalation."""
    if variant not in CREATE_VARIANTS:
        raise ValueError(f"variant: one of {CREATE_VARIANTS}")
    report = Report("create-cost", f"tidings serve (workers in serve), {variant} creates")
    type_ = "bench-escalated" if variant == "escalated" else "bench"
    async with _stack(config, in_serve=True) as stack:
        if variant == "escalated":
            await _catalogue(stack, config.jwt_secret, type_)
        warm = int(rate * warmup_s)
        errors = await _send(stack, rate, warm, type_, 0)
        count = int(rate * duration_s)
        pids = [stack.server.pid, *await _backends(stack.db_url)]
        server0, postgres0 = _cpu_s(pids[:1]), _cpu_s(pids[1:])
        started = time.monotonic()
        errors += await _send(stack, rate, count, type_, warm)
        elapsed = time.monotonic() - started
        server_s, postgres_s = _cpu_s(pids[:1]) - server0, _cpu_s(pids[1:]) - postgres0
        steps = await _steps(_db_url(stack))
    created = count - errors
    report.add(variant=variant, offered_per_s=rate, created=created, create_errors=errors,
               created_per_s=created / elapsed, server_cpu_pct=100.0 * server_s / elapsed,
               server_cpu_ms_per_create=1000.0 * server_s / max(created, 1),
               steps_written=steps.get("pending", 0), database=_database(config))
    if len(pids) > 1:
        report.add(postgres_cpu_ms_per_create=1000.0 * postgres_s / max(created, 1))
    return report


async def _steps(db_url: str) -> dict[str, int]:
    """Escalation steps by state (empty where the build has no such table)."""
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.text(
                "SELECT state, count(*) FROM escalation_steps GROUP BY state"))
            return {str(state): int(n) for state, n in rows}
    except sa.exc.DBAPIError:
        return {}
    finally:
        await engine.dispose()


def _database(config: Config) -> str:
    return "postgresql" if config.database_url.startswith("postgres") else "sqlite"


async def _queue(stack: Stack, users: list[str], variant: str) -> None:
    own = ["email"] if variant == "email" else ["in_app"]
    for start in range(0, len(users), BATCH_ITEMS):
        items: list[dict[str, object]] = [
            {"user_id": user, "channel": CHANNEL, "type": "bench",
             "title": f"bench @{time.time():.6f}", "message": "m", "media": own}
            for user in users[start : start + BATCH_ITEMS]]
        if variant == "escalated":
            for item in items:
                item["escalation"] = [{"after_seconds": 1, "unless": "seen",
                                       "media": ["email"]}]
        status, payload = await stack.transport.post(
            "/api/notifications/batch", json.dumps({"items": items}).encode())
        results = json.loads(payload).get("results", []) if status < 300 else []
        if len([r for r in results if r.get("status") in (201, 202)]) != len(items):
            raise RuntimeError(f"batch: HTTP {status} {payload[:300]!r}")


async def _worker_until(config: Config, stack: Stack, done: int | None,
                        timeout_s: float) -> tuple[float, float]:
    """Run one `tidings worker` until the sink holds ``done`` messages and the database
    says as many emails are sent (None: until it idles); its CPU seconds, and the wall."""
    worker = _spawn([_tidings(), "worker"],
                    _env(config, stack.db_url, stack.sink, stack.port, in_serve=False),
                    stack.workdir, 0 if config.pin else None)
    started = time.monotonic()
    deadline = started + timeout_s
    try:
        last = -1.0
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise LaunchError(f"tidings worker exited with {worker.returncode}")
            if done is None:
                await asyncio.sleep(1.0)
                now = _cpu_s([worker.pid])
                if now - last < 0.02:  # idle: its polls only
                    return now, time.monotonic() - started
                last = now
            elif stack.sink.received >= done and \
                    (await _count(_db_url(stack), "")).get("sent", 0) >= done:
                return _cpu_s([worker.pid]), time.monotonic() - started
            else:
                await asyncio.sleep(0.05)
        raise LaunchError(f"the worker did not finish within {timeout_s:.0f} s")
    finally:
        _stop(worker)


async def step_cost(config: Config, variant: str, count: int, timeout_s: float) -> Report:
    """Worker CPU per notification: its own email, or an escalation step that adds it."""
    if variant not in STEP_VARIANTS:
        raise ValueError(f"variant: one of {STEP_VARIANTS}")
    report = Report("step-cost", f"one tidings worker -> loopback SMTP sink, {variant}")
    users = [f"s{i}" for i in range(count)]
    async with _stack(config, in_serve=False) as stack:
        await _seed_contacts(stack.transport, users)
        idle_s, _ = await _worker_until(config, stack, None, 60)
        await _queue(stack, users, variant)
        await asyncio.sleep(1.5)  # the last step falls due 1 s after its create
        _stop(stack.server)  # the worker alone on its core from here
        worker_s, wall_s = await _worker_until(config, stack, count, timeout_s)
        statuses = await _count(_db_url(stack), "")
        steps = await _steps(_db_url(stack))
    work_s = worker_s - idle_s
    report.add(variant=variant, notifications=count, received=stack.sink.received,
               statuses=statuses, steps=steps, worker_startup_cpu_s=idle_s,
               worker_cpu_s=work_s, wall_s=wall_s,
               worker_cpu_ms_per_notification=1000.0 * work_s / count,
               batch_size=config.batch_size, database=_database(config))
    return report
