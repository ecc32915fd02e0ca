"""``http-server``: the create path with Tidings' app on uvicorn (`tidings serve`) and on
Granian (peers/granian_app.py), each with either Socket.IO transport, at fixed offered rates.

One run = one setup (server, transport) on one store: a fresh server (and on PostgreSQL a
fresh scratch database), ``--clients`` lean Socket.IO clients connected, then each rate in
``--rates`` offered for ``--duration`` s in turn on the same connections: creates of
``media: ["in_app"]`` for one user each, so the emit is in the path. Runs are interleaved
(every round runs each setup once, the order rotated each round), so a machine shared with
other work disturbs every setup alike. The figure to compare is server CPU ms per create
(the server process and all its threads and children, from /proc): on a shared machine
latency and served/s move with the neighbours, CPU per create much less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from .cli_common import floats, names
from .harness import Bench, Options, _limit_note, _per_create
from .loopback import parse_target
from .peers.launch import start_server
from .report import Report
from .scratchdb import ADMIN_URL, scratch_postgres
from .sender import Sender, random_picker
from .serving import GENERATOR_CPU, MACHINE_CPUS, SERVER_CPU
from .tokens import default_secret

SCENARIOS = ("http-server",)
SETUPS = ("uvicorn/python-socketio", "granian/python-socketio", "uvicorn/lean", "granian/lean")
STORES = ("sqlite", "postgres")


class InAppSender(Sender):
    """The benchmarks' sender, every create asking for in-app delivery only."""

    def _body(self, user: str | None, sent_at: float,
              channel: str | None = None) -> tuple[str, bytes]:
        key, body = super()._body(user, sent_at, channel)
        fields = json.loads(body)
        fields["media"] = ["in_app"]
        return key, json.dumps(fields, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Run:
    setup: str
    store: str

    @property
    def kind(self) -> str:  # the launcher's kind: `tidings serve` runs uvicorn
        return "tidings" if self.setup.startswith("uvicorn/") else "granian"

    @property
    def transport(self) -> str:
        return self.setup.split("/", 1)[1]


def plan(setups: list[str], stores: list[str], rounds: int) -> list[Run]:
    """Every setup on every store, ``rounds`` times, interleaved: a round runs each setup
    once per store, starting one setup later than the round before."""
    runs = []
    for round_ in range(rounds):
        shift = round_ % len(setups)
        for store in stores:
            runs += [Run(setup, store) for setup in setups[shift:] + setups[:shift]]
    return runs


@asynccontextmanager
async def _database(store: str, admin_url: str) -> AsyncIterator[str]:
    if store == "sqlite":  # the started server makes its own file in a fresh directory
        yield ""
        return
    async with scratch_postgres(admin_url, "http") as url:
        yield url


async def one(args: argparse.Namespace, run: Run) -> list[Report]:
    """A fresh server for ``run``, its clients connected, then one report per rate."""
    pin = not args.no_pin and len(MACHINE_CPUS) > 1
    async with _database(run.store, args.admin_url) as url:
        env = {"REALTIME_TRANSPORT": run.transport}
        if url:
            env["DATABASE_URL"] = url
        server = await start_server(run.kind, args.jwt_secret,
                                    cpu=SERVER_CPU if pin else None, extra_env=env)
        try:
            if pin:
                os.sched_setaffinity(0, {GENERATOR_CPU})
            options = Options(
                target=parse_target(server.url), target_name=f"{run.setup} ({run.store})",
                jwt_secret=args.jwt_secret, processes=1, server_pid=server.pid,
                generator_cpus=[GENERATOR_CPU] if pin else None,
                http_connections=args.http_connections, settle_s=args.settle,
            )
            return await rates(options, args.clients, args.rates, args.duration)
        finally:
            server.stop()


async def rates(options: Options, clients: int, offered: list[float],
                duration_s: float) -> list[Report]:
    reports = []
    async with Bench(options) as bench:
        connected = Report("connect", options.target_name)
        users = await bench.connect(clients, connected)
        for rate in offered:
            report = Report(f"create {rate:g}/s", options.target_name)
            report.add(connected=len(users))
            if not users:
                report.notes.append("no client connected")
                reports.append(report)
                continue
            sender = InAppSender(bench.transport, f"{bench.run_id}-{rate:g}")
            start = bench.phase_start()
            started = time.perf_counter()
            log = await sender.run_rate(rate, duration_s, random_picker(users))
            await bench.load_figures(report, start, time.perf_counter() - started)
            report.add(offered_rate_per_s=rate)
            bench.sender_figures(log, report)
            _per_create(report)
            await bench.deliveries(set(log.created.items()), report)
            _limit_note(report)
            reports.append(report)
    return reports


# (figure, format) of the summary: each cell is min / median / max over the rounds.
FIGURES = (
    ("server_cpu_ms_per_create", "{:.2f}"),
    ("create_rate_per_s", "{:.0f}"),
    ("latency_p50_ms", "{:.1f}"),
    ("latency_p99_ms", "{:.1f}"),
    ("http_p99_ms", "{:.1f}"),
    ("other_cpu_pct", "{:.0f}"),
)


KEPT_UP = 0.98  # served at least this share of the offered rate


def summarize(reports: list[Report]) -> Report:
    """Per (store, rate, setup): every figure of FIGURES as min / median / max over the
    rounds, and lost notifications and failed creates summed."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for report in reports:
        groups.setdefault(f"{report.scenario}, {report.target}", []).append(report.figures)
    summary = Report("http-server-summary", "min / median / max over rounds")
    for name, runs in sorted(groups.items()):
        row: dict[str, Any] = {"rounds": len(runs)}
        for figure, pattern in FIGURES:
            values = sorted(v for f in runs if isinstance(v := f.get(figure), float | int))
            if values:
                row[figure] = " / ".join(pattern.format(v) for v in
                                         (values[0], statistics.median(values), values[-1]))
        # A server that falls behind batches more creates per transaction and so spends
        # less per create: the runs that kept up are the like-for-like ones.
        kept = sorted(f["server_cpu_ms_per_create"] for f in runs
                      if isinstance(f.get("server_cpu_ms_per_create"), float)
                      and f.get("create_rate_per_s", 0) >= KEPT_UP * f["offered_rate_per_s"])
        row["cpu ms/create, runs that kept up"] = (
            f"{statistics.median(kept):.2f} ({len(kept)} runs)" if kept else "-")
        row["lost / create errors"] = (f"{sum(f.get('lost', 0) for f in runs)} / "
                                       f"{sum(f.get('create_errors', 0) for f in runs)}")
        summary.add(**{name: row})
    return summary


def table(summary: Report) -> str:
    header = ["run", "rounds", *(f for f, _ in FIGURES), "cpu ms/create, runs that kept up",
              "lost / create errors"]
    lines = [[name, *(str(row.get(h, "-")) for h in header[1:])]
             for name, row in summary.figures.items()]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    return "\n".join(["== http-server: min / median / max over rounds =="] + [
        "  " + "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *lines]])


async def run(args: argparse.Namespace) -> list[Report]:
    reports: list[Report] = []
    for the_run in plan(args.setups, args.stores, args.rounds):
        print(f"-- {the_run.setup} on {the_run.store}", flush=True)
        for report in await one(args, the_run):
            reports.append(report)
            print(report.table(), flush=True)
    summary = summarize(reports)
    print(table(summary), flush=True)
    return [*reports, summary]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "http-server",
        help="create path: Tidings on uvicorn and on Granian, each Socket.IO transport",
    )
    p.add_argument("--setups", type=names(SETUPS), default=list(SETUPS),
                   help=f"server/transport pairs, of {','.join(SETUPS)}")
    p.add_argument("--stores", type=names(STORES), default=["sqlite"],
                   help="sqlite,postgres (PostgreSQL: a scratch database per run)")
    p.add_argument("--rates", type=floats, default=[500.0, 1000.0],
                   help="offered creates/s, one after the other on the same clients")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of load per rate")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL to make scratch databases on")
    p.add_argument("--jwt-secret", default=default_secret())
    p.add_argument("--http-connections", type=int, default=32)
    p.add_argument("--settle", type=float, default=10.0)
    p.add_argument("--no-pin", action="store_true")
    p.add_argument("--json", dest="json_path", help="also write every report as JSON here")
