"""``floor``: the seed's floor (10,000 clients, 1,000 creates/s) and twice its rate, on each
of Tidings' stores and a peer in one run, every row printed beside the goal it answers
(issue 19's table).

A preset over ``compare`` (comparison.py): its plan with the targeted scenario only, the
same servers (fresh for each run, a scratch PostgreSQL database for each), the same
reports; only the closing table is its own. The first rate gives the latency and CPU rows,
every later rate a "served, p99" row. A Tidings cell meets its goal when the figure is
within it and the run lost nothing; the peer, which stores nothing, is the reference and
is held to no goal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .comparison import NO_PEER, Measured, Plan, RunOne, measure
from .report import Report

RATES = (1000.0, 2000.0)
STORES = ("sqlite", "postgres")


@dataclass(frozen=True)
class Goal:
    """Issue 19's goals at one rate: p99 create-to-receive under ``p99_ms``, server CPU at
    or under ``cpu_pct`` of its core (None: no goal)."""

    p99_ms: float | None = None
    cpu_pct: float | None = None


GOALS = {1000.0: Goal(p99_ms=25.0, cpu_pct=35.0), 2000.0: Goal(p99_ms=50.0)}


@dataclass
class Row:
    """One printed row: a figure per side, the goal, and which Tidings sides meet it."""

    figure: str
    goal: str
    values: dict[str, str]
    met: dict[str, bool]

    def to_json(self) -> dict[str, Any]:
        return {"values": self.values, "goal": self.goal, "met": self.met}


def plan(target: str, peer: str, stores: list[str], rates: list[float], clients: int,
         duration_s: float, admin_url: str) -> Plan:
    return Plan(target=target, peer=peer, stores=stores, rates=rates, scenarios=["targeted"],
                clients=clients, hold_s=0.0, duration_s=duration_s, rounds=0, down_s=0.0,
                recovery_rate=0.0, admin_url=admin_url)


async def floor(the_plan: Plan, one: RunOne) -> list[Report]:
    """Every run's report, then one ``floor-summary`` report (row -> values, goal, met)."""
    measured = await measure(the_plan, one)
    rows = floor_rows(the_plan, measured)
    sides = _sides(the_plan, measured)
    print(table(the_plan, rows, list(sides)), flush=True)
    summary = Report("floor-summary", ", ".join(sides))
    summary.add(**{row.figure: row.to_json() for row in rows})
    return [*measured.reports(), summary]


def _sides(the_plan: Plan, measured: Measured) -> dict[str, dict[str, Report]]:
    sides = {f"{the_plan.target} ({s})": measured.ours[s] for s in the_plan.stores}
    if the_plan.peer != NO_PEER:
        sides[the_plan.peer] = measured.theirs
    return sides


def floor_rows(the_plan: Plan, measured: Measured) -> list[Row]:
    sides = _sides(the_plan, measured)
    ours = {f"{the_plan.target} ({s})" for s in the_plan.stores}
    rows: list[Row] = []
    for index, rate in enumerate(the_plan.rates):
        goal = GOALS.get(rate, Goal())
        runs = {side: reports.get(f"targeted {rate:g}/s") for side, reports in sides.items()}
        figures = {side: run.figures for side, run in runs.items() if run is not None}
        p99_goal = f"p99 < {goal.p99_ms:g} ms" if goal.p99_ms is not None else "-"
        p99_met = _met(figures, ours, "latency_p99_ms", goal.p99_ms, strict=True)
        if index == 0:
            rows.append(Row(
                f"{the_plan.clients:,} clients, {rate:,.0f}/s: p50 / p95 / p99 "
                "create-to-receive (ms)", p99_goal,
                {s: _cell(f, "{latency_p50_ms:.1f} / {latency_p95_ms:.1f} / {latency_p99_ms:.1f}")
                 for s, f in figures.items()}, p99_met,
            ))
            rows.append(Row(
                "the same, server CPU: % of its core, ms per create (+ rest of machine)",
                f"<= {goal.cpu_pct:g}%" if goal.cpu_pct is not None else "-",
                {s: _cell(f, "{server_cpu_pct:.0f}%, {server_cpu_ms_per_create:.2f} "
                          "(+{other_cpu_ms_per_create:.2f})") for s, f in figures.items()},
                _met(figures, ours, "server_cpu_pct", goal.cpu_pct, strict=False),
            ))
        else:
            rows.append(Row(
                f"{the_plan.clients:,} clients, {rate:,.0f}/s offered: served/s, p99 (ms)",
                p99_goal,
                {s: _cell(f, "{create_rate_per_s:,.0f}/s, {latency_p99_ms:.1f}")
                 for s, f in figures.items()}, p99_met,
            ))
    every = {side: [r.figures for r in reports.values()] for side, reports in sides.items()}
    rows.append(Row(
        "lost / create errors, all runs", "0 / 0",
        {s: f"{sum(f.get('lost', 0) for f in fs)} / {sum(f.get('create_errors', 0) for f in fs)}"
         for s, fs in every.items()},
        {s: all(_clean(f) for f in fs) for s, fs in every.items() if s in ours},
    ))
    return rows


def _cell(figures: dict[str, Any], pattern: str) -> str:
    """``pattern`` filled from the figures; "-" when one is missing or not a number (a run
    where nothing connected, nothing arrived)."""
    try:
        return pattern.format(**figures)
    except (KeyError, ValueError, TypeError):
        return "-"


def _met(figures: dict[str, dict[str, Any]], ours: set[str], key: str, goal: float | None,
         strict: bool) -> dict[str, bool]:
    """Whether each Tidings side is within the goal on ``key`` and lost nothing (empty where
    the row has no goal)."""
    if goal is None:
        return {}
    met = {}
    for side, f in figures.items():
        if side in ours:
            value = f.get(key)
            within = isinstance(value, float) and (value < goal if strict else value <= goal)
            met[side] = within and _clean(f)
    return met


def _clean(f: dict[str, Any]) -> bool:
    return bool(f.get("created")) and f.get("lost") == 0 and f.get("create_errors") == 0


def table(the_plan: Plan, rows: list[Row], sides: list[str]) -> str:
    """The rows as aligned columns: figure, one per side, goal, and who meets it."""
    header = ["figure", *sides, "goal", "met"]
    lines = [[row.figure, *(row.values.get(s, "-") for s in sides), row.goal,
              _verdict(row.met, the_plan.target)] for row in rows]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    out = [f"== floor: {the_plan.clients:,} clients, {the_plan.duration_s:g} s per rate ==",
           *("  " + "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in [header, *lines])]
    return "\n".join(out)


def _verdict(met: dict[str, bool], target: str) -> str:
    if not met:
        return "-"
    return ", ".join(f"{side.removeprefix(target).strip(' ()')} {'yes' if ok else 'NO'}"
                     for side, ok in met.items())

