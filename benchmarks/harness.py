"""What every scenario runs on: its options, and one run's moving parts (worker pool,
HTTP transport, server monitor) with the figures they report.

The scenarios themselves are in scenarios.py.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .loopback import Target, source_addresses
from .pool import Pool, Worker
from .report import Report, latency_summary
from .sender import Sender, SendLog
from .servermon import (
    Sample,
    ServerMonitor,
    cpu_percent,
    machine_busy_seconds,
    processes_cpu_seconds,
)
from .tokens import service_token, user_ids
from .transport import make_transport


@dataclass
class Options:
    """How to load the server; the same for every scenario."""

    target: Target
    target_name: str
    jwt_secret: str
    processes: int = 1
    source_addresses: int = 0
    full_clients: int = 0
    connect_concurrency: int = 200
    http: str = "raw"
    http_connections: int = 32
    server_pid: int | None = None
    generator_cpus: list[int] | None = None
    settle_s: float = 10.0
    ack_timeout_s: float = 60.0


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Bench:
    """One run's moving parts (worker pool, HTTP transport, server monitor)."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.pool = Pool(
            options.target,
            options.jwt_secret,
            options.processes,
            source_addresses(options.source_addresses),
            options.full_clients,
            options.generator_cpus,
        )
        self.transport = make_transport(
            options.http,
            options.target,
            service_token(options.jwt_secret),
            options.http_connections,
        )
        self.monitor = ServerMonitor(options.server_pid) if options.server_pid else None
        self.run_id = uuid.uuid4().hex[:8]
        self.users: list[str] = []

    async def __aenter__(self) -> Bench:
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.transport.close()
        await self.pool.close()

    def sender(self) -> Sender:
        return Sender(self.transport, f"{self.run_id}-{time.monotonic_ns() % 1_000_000}")

    def server_sample(self) -> Sample | None:
        return self.monitor.sample() if self.monitor else None

    def generator_cpu(self) -> float:
        pids = [w.process.pid for w in self.pool.workers if isinstance(w, Worker) and w.process.pid]
        return processes_cpu_seconds(pids)

    async def connect(self, count: int, report: Report) -> list[str]:
        """Connect ``count`` users (u0..); report connect time/rate and RSS per connection."""
        users = user_ids(count)
        await self.pool.all("stats")  # wait until every worker process is up and listening
        before = self.server_sample()
        generator_before = self.generator_cpu()
        machine_before = machine_busy_seconds()
        answers = await self.pool.connect(users, self.options.connect_concurrency)
        after = self.server_sample()
        # Connect time is the lean workers' own (token minting excluded); the few full
        # clients connect beside them but would only blur the figure.
        lean = [
            a for w, a in zip(self.pool.workers, answers, strict=False) if w.spec.kind == "lean"
        ]
        elapsed = max(a["elapsed_s"] for a in lean)
        lean_connected = sum(a["connected"] for a in lean)
        failed = {u for a in answers for u in a["failed_users"]}
        self.users = [u for u in users if u not in failed]
        connect_ms = latency_summary([t for a in answers for t in a["connect_ms"]])
        errors: dict[str, int] = {}
        for answer in answers:
            for name, n in answer["errors"].items():
                errors[name] = errors.get(name, 0) + n
        report.add(
            clients=count,
            connected=len(self.users),
            connect_failed=len(failed),
            connect_s=elapsed,
            connect_rate_per_s=lean_connected / elapsed if elapsed else 0.0,
            connect_p50_ms=connect_ms["p50_ms"],
            connect_p99_ms=connect_ms["p99_ms"],
        )
        if errors:
            report.add(connect_errors=errors)
        if before and after and self.users:
            report.add(
                server_rss_before_mb=before.rss_bytes / 2**20,
                server_rss_after_connect_mb=after.rss_bytes / 2**20,
                server_rss_per_conn_kb=(after.rss_bytes - before.rss_bytes)
                / len(self.users)
                / 1024,
                server_cpu_connect_pct=cpu_percent(before, after),
            )
        if elapsed:
            generator = self.generator_cpu() - generator_before
            server = (after.cpu_s - before.cpu_s) if before and after else 0.0
            others = machine_busy_seconds() - machine_before - generator - server
            report.add(
                generator_cpu_connect_pct=100.0 * generator / elapsed,
                other_cpu_connect_pct=100.0 * max(0.0, others) / elapsed,
            )
        return self.users

    async def deliveries(
        self, expected: set[tuple[str, str]], report: Report, settle_s: float | None = None
    ) -> None:
        """Wait for every expected (key, user) receipt, then count latency, loss, extras."""
        waited = await self.pool.wait_received(
            len(expected), self.options.settle_s if settle_s is None else settle_s
        )
        answers = await self.pool.all("collect", reset=True)
        lean_ms: list[float] = []
        full_ms: list[float] = []
        received: set[tuple[str, str]] = set()
        unexpected = duplicates = misrouted = unmatched = 0
        for worker, answer in zip(self.pool.workers, answers, strict=False):
            bucket = full_ms if worker.spec.kind == "full" else lean_ms
            for key, user, latency, _id in answer["records"]:
                if (key, user) in expected:
                    received.add((key, user))
                    bucket.append(latency)
                else:
                    unexpected += 1
            duplicates += answer["duplicates"]
            misrouted += answer["misrouted"]
            unmatched += answer["unmatched"]
        summary = latency_summary(lean_ms)
        report.add(
            expected=len(expected),
            received=len(received),
            lost=len(expected) - len(received),
            duplicates=duplicates,
            misrouted=misrouted,
            unexpected=unexpected,
            latency_p50_ms=summary["p50_ms"],
            latency_p95_ms=summary["p95_ms"],
            latency_p99_ms=summary["p99_ms"],
            latency_max_ms=summary["max_ms"],
            settle_wait_s=waited,
        )
        if unmatched:
            report.add(foreign_notifications=unmatched)
        if full_ms:
            full = latency_summary(full_ms)
            report.add(
                full_client_latency_p50_ms=full["p50_ms"],
                full_client_latency_p99_ms=full["p99_ms"],
                full_client_latency_max_ms=full["max_ms"],
            )

    def sender_figures(self, log: SendLog, report: Report) -> None:
        http = latency_summary(log.http_ms)
        lag = latency_summary(log.lag_ms)
        report.add(
            scheduled=log.scheduled,
            created=len(log.created),
            create_errors=sum(log.errors.values()),
            create_rate_per_s=log.rate,
            http_p50_ms=http["p50_ms"],
            http_p99_ms=http["p99_ms"],
            sender_lag_p99_ms=lag["p99_ms"],
        )
        if log.errors:
            report.add(create_error_kinds=dict(log.errors.most_common(5)))

    def phase_start(self) -> tuple[Sample | None, float, float]:
        return self.server_sample(), self.generator_cpu(), machine_busy_seconds()

    async def load_figures(
        self, report: Report, start: tuple[Sample | None, float, float], wall_s: float
    ) -> None:
        """CPU of both sides over a phase: tells whether the server or the generator limited
        it, and how much other processes on the machine took meanwhile."""
        server_before, generator_before, machine_before = start
        server_after = self.server_sample()
        server_s = 0.0
        if server_before and server_after:
            server_s = server_after.cpu_s - server_before.cpu_s
            report.add(
                server_cpu_pct=cpu_percent(server_before, server_after),
                server_rss_mb=server_after.rss_bytes / 2**20,
            )
        if wall_s > 0:
            generator_s = self.generator_cpu() - generator_before
            others = machine_busy_seconds() - machine_before - generator_s - server_s
            report.add(
                generator_cpu_pct=100.0 * generator_s / wall_s,
                other_cpu_pct=100.0 * max(0.0, others) / wall_s,
                server_cpu_s=server_s,
                other_cpu_s=max(0.0, others),
            )


def _per_create(report: Report) -> None:
    """CPU per stored notification: the server's own, and the rest of the machine's but the
    generator (PostgreSQL's backends when the store is PostgreSQL)."""
    created = report.figures.get("created")
    if not created:
        return
    for name in ("server", "other"):
        seconds = report.figures.get(f"{name}_cpu_s")
        if isinstance(seconds, float):
            report.add(**{f"{name}_cpu_ms_per_create": 1000.0 * seconds / created})


def _limit_note(report: Report) -> None:
    server = report.figures.get("server_cpu_pct")
    generator = report.figures.get("generator_cpu_pct")
    if isinstance(server, float) and server > 85:
        report.notes.append(f"server CPU-bound ({server:.0f}% of a core)")
    if isinstance(generator, float) and generator > 85:
        report.notes.append(f"load generator busy ({generator:.0f}% of a core over its processes)")
    for key in ("other_cpu_pct", "other_cpu_connect_pct"):
        other = report.figures.get(key)
        if isinstance(other, float) and other > 20:
            report.notes.append(
                f"other processes took {other:.0f}% of a core ({key}): figures disturbed"
            )

