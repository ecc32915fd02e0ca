"""``compare``: the same scenarios against Tidings (on each store asked for) and a peer, in
one run, then the figures side by side and the summary rows of the performance goals.

Each scenario gets a fresh server (and, on PostgreSQL, a fresh database), so one run's
memory or data does not leak into the next. The peer stores nothing, so it runs once per
scenario whatever the stores; its runs are interleaved with the first store's. ``floor``
(floor.py) is this plan with its own table.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from . import scenarios
from .harness import Options
from .report import Report, comparison_table
from .scratchdb import scratch_postgres

Scenario = Callable[[Options], Awaitable[Report]]
# (server kind, keep a replay history, DATABASE_URL or "", scenario) -> its report
RunOne = Callable[[str, bool, str, Scenario], Awaitable[Report]]

SCENARIOS = ("connections", "targeted", "fanout", "recovery")
STORES = ("sqlite", "postgres")
NO_PEER = "none"  # a plan without a peer: Tidings' runs only
P99_GOAL_MS = 100.0  # "max sustained creates/s" counts a rate held with p99 at or under it


@dataclass(frozen=True)
class Plan:
    target: str
    peer: str
    stores: list[str]
    rates: list[float]
    scenarios: list[str]
    clients: int
    hold_s: float
    duration_s: float
    rounds: int
    down_s: float
    recovery_rate: float
    admin_url: str


def _runs(plan: Plan) -> list[tuple[str, bool, Scenario]]:
    """(label, history, scenario) in the order they run."""
    runs: list[tuple[str, bool, Scenario]] = []
    if "connections" in plan.scenarios:
        runs.append(("connections", False,
                     lambda o: scenarios.connections(o, plan.clients, plan.hold_s)))
    if "targeted" in plan.scenarios:
        for rate in plan.rates:
            runs.append((f"targeted {rate:g}/s", False,
                         lambda o, r=rate: scenarios.targeted(o, plan.clients, r, plan.duration_s)))
    if "fanout" in plan.scenarios:
        runs.append(("fanout", False,
                     lambda o: scenarios.fanout(o, plan.clients, "news", plan.rounds)))
    if "recovery" in plan.scenarios:
        runs.append(("recovery", True, lambda o: scenarios.recovery(
            o, plan.clients, plan.recovery_rate, plan.down_s)))
    return runs


@asynccontextmanager
async def _database(store: str, admin_url: str) -> AsyncIterator[str]:
    if store == "sqlite":  # the started server makes its own file in a fresh directory
        yield ""
        return
    async with scratch_postgres(admin_url, "compare") as url:
        yield url


@dataclass
class Measured:
    """Every run's report: Tidings' by store then label, the peer's by label (empty with
    no peer)."""

    ours: dict[str, dict[str, Report]]
    theirs: dict[str, Report]

    def reports(self) -> list[Report]:
        return [r for runs in self.ours.values() for r in runs.values()] + list(
            self.theirs.values())


async def measure(plan: Plan, one: RunOne) -> Measured:
    """Run the plan, printing each run's table as it ends."""
    ours: dict[str, dict[str, Report]] = {store: {} for store in plan.stores}
    theirs: dict[str, Report] = {}
    for store in plan.stores:
        for label, history, run in _runs(plan):
            async with _database(store, plan.admin_url) as url:
                report = await one(plan.target, history, url, run)
            report.target = f"{plan.target} ({store})"
            report.scenario = label
            ours[store][label] = report
            print(report.table(), flush=True)
            if plan.peer != NO_PEER and label not in theirs:
                peer = await one(plan.peer, history, "", run)
                peer.scenario = label
                theirs[label] = peer
                print(peer.table(), flush=True)
    return Measured(ours, theirs)


async def compare(plan: Plan, one: RunOne) -> list[Report]:
    """Every run's report, then one ``compare-summary`` report of the goal rows."""
    measured = await measure(plan, one)
    ours, theirs = measured.ours, measured.theirs
    for store in plan.stores:
        labels = [k for k in ours[store] if k in theirs]
        if labels:
            print(comparison_table([ours[store][k] for k in labels],
                                   [theirs[k] for k in labels]))
    summary = summarize(plan, ours, theirs)
    print(summary.table())
    return [*measured.reports(), summary]


def summarize(plan: Plan, ours: dict[str, dict[str, Report]], theirs: dict[str, Report]) -> Report:
    """The rows of the performance goals, one figure per side (``a / b`` where a row has two)."""
    summary = Report("compare-summary", f"{plan.target} vs {plan.peer}")
    sides: dict[str, dict[str, Report]] = {f"{plan.target} ({s})": ours[s] for s in plan.stores}
    if plan.peer != NO_PEER:
        sides[plan.peer] = theirs
    rows: dict[str, dict[str, str]] = {}

    def put(row: str, side: str, value: str) -> None:
        rows.setdefault(row, {})[side] = value

    for side, reports in sides.items():
        for rate in plan.rates:
            run = reports.get(f"targeted {rate:g}/s")
            if run is None:
                continue
            f = run.figures
            server, rest = f.get("server_cpu_ms_per_create"), f.get("other_cpu_ms_per_create")
            put(f"server CPU per create at {rate:g}/s (ms; + rest of machine)", side,
                f"{_n(server, 3)} (+{_n(rest, 3)})")
            put(f"{rate:g}/s: created/s, p50 / p99 create-to-receive (ms), lost", side,
                f"{_n(f.get('create_rate_per_s'), 0)}/s, {_n(f.get('latency_p50_ms'), 1)} / "
                f"{_n(f.get('latency_p99_ms'), 1)}, {f.get('lost', '-')}")
        put(f"max sustained creates/s of those run (p99 <= {P99_GOAL_MS:g} ms, 0 lost)", side,
            _sustained(plan.rates, reports))
        if (fan := reports.get("fanout")) is not None:
            put(f"channel fan-out to {plan.clients:,}: last receipt, median (s)", side,
                _n(_ms_to_s(fan.figures.get("last_receipt_median_ms")), 2))
        if (rec := reports.get("recovery")) is not None:
            put(f"{plan.clients:,} dropped at once: all reconnected / all replayed (s)", side,
                f"{_n(rec.figures.get('reconnected_s'), 1)} / "
                f"{_n(rec.figures.get('caught_up_s'), 1)} ({rec.figures.get('lost', '-')} lost)")
        if (con := reports.get("connections")) is not None:
            put("memory per connection (KB of server RSS)", side,
                _n(con.figures.get("server_rss_per_conn_kb"), 1))
            put(f"connect {plan.clients:,} (s)", side, _n(con.figures.get("connect_s"), 1))
    summary.add(**{row: values for row, values in rows.items()})
    return summary


def _sustained(rates: list[float], reports: dict[str, Report]) -> str:
    held = []
    for rate in rates:
        run = reports.get(f"targeted {rate:g}/s")
        if run is None:
            continue
        f = run.figures
        p99 = f.get("latency_p99_ms", math.inf)
        if (f.get("lost") == 0 and isinstance(p99, float) and p99 <= P99_GOAL_MS
                and f.get("create_rate_per_s", 0) >= 0.98 * rate):
            held.append(rate)
    if held:
        return f">= {max(held):,.0f}/s"
    return f"< {min(rates):,.0f}/s" if rates else "-"


def _ms_to_s(value: Any) -> float | None:
    return value / 1000.0 if isinstance(value, (int, float)) else None


def _n(value: Any, digits: int) -> str:
    if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"
