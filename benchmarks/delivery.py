"""Delivery scenarios: email through the durable queue to a loopback SMTP sink.

``email``: notifications with ``media: ["email"]`` are created in bulk through the API on a
`tidings serve` whose own workers are off (so they wait in the queue), then ONE
`tidings worker` process is started and timed until the sink has every message and the
database says every delivery is ``sent``. ``email-latency``: single creates at a fixed
rate on a `tidings serve` with its workers on (the default deployment); each title carries
its scheduled instant, and the sink measures create-to-provider latency. Both start and
stop their own processes (server, worker, sink) by pid, on loopback only.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import psutil

from .deliverystack import (
    Config,
    _count,
    _create_bulk,
    _env,
    _item,
    _seed_contacts,
    _spawn,
    _stack,
    _stop,
    _tidings,
)
from .harness import Options
from .peers.launch import LaunchError
from .report import Report, latency_summary
from .servermon import machine_busy_seconds
from .smtpsink import SmtpSink
from .tokens import service_token
from .transport import RawTransport


async def email_throughput(config: Config, count: int, timeout_s: float) -> Report:
    """Queue ``count`` emails, then time one `tidings worker` draining them to the sink."""
    report = Report("email", "tidings worker -> loopback SMTP sink")
    users = [f"e{i}" for i in range(count)]
    async with _stack(config, in_serve=False) as stack:
        started = time.monotonic()
        await _seed_contacts(stack.transport, users)
        seeded = time.monotonic()
        await _create_bulk(stack.transport, users)
        created = time.monotonic()
        before = await _count(stack.db_url, "")
        report.add(seed_contacts_s=seeded - started, create_s=created - seeded,
                   create_per_s=count / (created - seeded), queued=before.get("pending", 0))
        _stop(stack.server)  # the worker alone on its core from here
        worker = _spawn(
            [_tidings(), "worker"],
            _env(config, stack.db_url, stack.sink, stack.port, in_serve=False),
            stack.workdir, 0 if config.pin else None,
        )
        try:
            proc = psutil.Process(worker.pid)
            busy0 = machine_busy_seconds()
            t0 = time.monotonic()
            first_at = None
            deadline = t0 + timeout_s
            while stack.sink.received < count and time.monotonic() < deadline:
                if worker.poll() is not None:
                    raise LaunchError(f"tidings worker exited with {worker.returncode}")
                if first_at is None and stack.sink.received:
                    first_at = time.monotonic()
                await asyncio.sleep(0.02)
            received_at = time.monotonic()
            # The last settlements follow the last message by one batch at most.
            while time.monotonic() < deadline:
                after = await _count(stack.db_url, "")
                if after.get("sent", 0) >= count or worker.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            sent_at = time.monotonic()
            times = proc.cpu_times()
            worker_cpu_s = times.user + times.system
            busy = machine_busy_seconds() - busy0
        finally:
            _stop(worker)
        elapsed = sent_at - t0
        sink_cpu = _cpu_seconds(stack.sink.pid)
        report.add(
            emails=count, received=stack.sink.received, statuses=after,
            first_message_s=(first_at or received_at) - t0,
            all_received_s=received_at - t0, all_sent_s=elapsed,
            emails_per_s=after.get("sent", 0) / elapsed if elapsed else 0.0,
            steady_per_s=(
                count / (received_at - first_at) if first_at and received_at > first_at else 0.0
            ),
            worker_cpu_pct=100.0 * worker_cpu_s / elapsed if elapsed else 0.0,
            sink_cpu_s=sink_cpu,
            machine_busy_pct=100.0 * busy / elapsed if elapsed else 0.0,
            batch_size=config.batch_size,
            database="postgresql" if config.database_url.startswith("postgres") else "sqlite",
        )
    return report


def _cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except psutil.NoSuchProcess:
        return float("nan")


async def email_latency(config: Config, rate: float, duration_s: float, settle_s: float) -> Report:
    """Single creates at ``rate``/s on a serve with its workers on; sink-side latency."""
    report = Report("email-latency", "tidings serve (workers in serve) -> loopback SMTP sink")
    count = int(rate * duration_s)
    users = [f"l{i}" for i in range(count)]
    async with _stack(config, in_serve=True) as stack:
        await _seed_contacts(stack.transport, users)
        before = stack.sink.received
        server_proc = psutil.Process(stack.server.pid)
        cpu0 = server_proc.cpu_times()
        start = time.time() + 0.2
        errors = 0

        async def one(i: int, scheduled: float) -> None:
            nonlocal errors
            body = json.dumps(_item(users[i], scheduled)).encode()
            status, _ = await stack.transport.post("/api/notifications", body)
            if status != 201:
                errors += 1

        tasks = []
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*tasks)
        sent_for = time.time() - start
        cpu1 = server_proc.cpu_times()
        deadline = time.monotonic() + settle_s
        # The count lives in the sink's process: polled, there is no event to await.
        while stack.sink.received - before < count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        received = stack.sink.received - before
    latencies = stack.latencies
    report.add(offered_per_s=rate, created=count - errors, create_errors=errors,
               received=received, lost=count - errors - received,
               server_cpu_pct=100.0 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system))
               / sent_for)
    report.add(**{f"create_to_smtp_{k}": v for k, v in latency_summary(latencies).items()})
    return report


def email_env(sink: SmtpSink) -> dict[str, str]:
    """What a started `tidings serve` needs to send email to ``sink`` at full speed."""
    return {
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port), "SMTP_STARTTLS": "false",
        "SMTP_TLS": "false", "EMAIL_FROM": "bench@example.test", "THROTTLE_PER_HOUR": "0",
        "RATE_LIMIT_CREATES": "1000000/second",
    }


async def with_email_flow(
    options: Options, rate: float, sink: SmtpSink, run: Callable[[], Awaitable[Report]]
) -> Report:
    """Run ``run`` (an in-app scenario) while emails are created at ``rate``/s in bulk
    requests every 100 ms, to users of their own, and sent by the server's workers."""
    transport = RawTransport(options.target, service_token(options.jwt_secret), 4)
    users = [f"m{i}" for i in range(1000)]
    await _seed_contacts(transport, users)
    stop = asyncio.Event()
    created = 0
    per_tick = max(1, round(rate / 10))

    async def flow() -> None:
        nonlocal created
        tick = time.monotonic()
        while not stop.is_set():
            items = [_item(users[(created + i) % len(users)], time.time())
                     for i in range(per_tick)]
            status, _ = await transport.post(
                "/api/notifications/batch", json.dumps({"items": items}).encode())
            if status in (200, 201, 207):
                created += per_tick
            tick += 0.1
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, tick - time.monotonic()))
            except TimeoutError:
                pass

    received0 = sink.received
    started = time.monotonic()
    task = asyncio.create_task(flow())
    try:
        report = await run()
    finally:
        stop.set()
        await task
        await transport.close()
    elapsed = time.monotonic() - started
    report.add(email_offered_per_s=rate, emails_created=created,
               emails_received=sink.received - received0,
               emails_received_per_s=(sink.received - received0) / elapsed)
    report.target += f", with email at {rate:.0f}/s"
    return report
