"""`python -m benchmarks compare` at a tiny size: every server started by the tool (Tidings on
SQLite and on a scratch PostgreSQL database, and the python-socketio peer), nothing lost on
either side, the goal rows filled for each, the scratch database gone afterwards. Timing
figures belong to the benchmark, not here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import asyncpg
import pytest

from benchmarks.__main__ import build_parser, main_async
from benchmarks.comparison import Plan, summarize
from benchmarks.report import Report
from tests.conftest import SECRET

pytestmark = pytest.mark.bench


async def _bench_databases(kind: str = "compare") -> set[str]:
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1",
            f"tidings_bench_{kind}_{os.getpid()}_%")
    finally:
        await conn.close()
    return {r["datname"] for r in rows}


async def test_compare_on_both_stores_against_a_peer_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    before = await _bench_databases()
    args = build_parser().parse_args([
        "compare", "--peer", "pysio", "--stores", "sqlite,postgres", "--rate", "20",
        "--scenarios", "targeted,recovery", "--clients", "20", "--duration", "1",
        "--down", "1", "--recovery-rate", "10", "--settle", "5", "--processes", "0",
        "--no-pin", "--jwt-secret", SECRET, "--json", str(out),
    ])
    assert await main_async(args) == 0

    reports = json.loads(out.read_text())["reports"]
    runs = [r for r in reports if r["scenario"] != "compare-summary"]
    # 2 Tidings runs per store (targeted, recovery) and the peer's 2, run once
    assert sorted(r["target"] for r in runs) == sorted(
        ["tidings (sqlite)"] * 2 + ["tidings (postgres)"] * 2 + ["pysio"] * 2)
    for run in runs:
        assert run["figures"]["lost"] == 0, run
        assert run["figures"]["create_errors"] == 0, run
    targeted = [r for r in runs if r["scenario"].startswith("targeted")]
    assert all(r["figures"]["server_cpu_ms_per_create"] > 0 for r in targeted)

    summary = next(r for r in reports if r["scenario"] == "compare-summary")["figures"]
    sides = {"tidings (sqlite)", "tidings (postgres)", "pysio"}
    for row in ("20/s: created/s, p50 / p99 create-to-receive (ms), lost",
                "20 dropped at once: all reconnected / all replayed (s)"):
        assert set(summary[row]) == sides, row
    assert all(v.endswith(", 0") for v in summary[
        "20/s: created/s, p50 / p99 create-to-receive (ms), lost"].values())
    assert await _bench_databases() == before


def _targeted(rate: float, created_per_s: float, p99_ms: float, lost: int) -> Report:
    report = Report(f"targeted {rate:g}/s", "x")
    report.add(create_rate_per_s=created_per_s, latency_p99_ms=p99_ms, lost=lost)
    return report


def test_max_sustained_rate_is_the_highest_rate_held_within_the_p99_goal() -> None:
    plan = Plan(target="tidings", peer="node", stores=["sqlite"], rates=[1000, 2000, 4000],
                scenarios=["targeted"], clients=10, hold_s=1, duration_s=1, rounds=1,
                down_s=1, recovery_rate=1, admin_url="")
    held = {"targeted 1000/s": _targeted(1000, 1000, 20.0, 0),
            "targeted 2000/s": _targeted(2000, 1999, 99.0, 0),
            "targeted 4000/s": _targeted(4000, 4000, 40.0, 3)}  # fast, but lost some
    behind = {"targeted 1000/s": _targeted(1000, 900, 20.0, 0),  # could not keep the rate
              "targeted 2000/s": _targeted(2000, 2000, 150.0, 0),
              "targeted 4000/s": _targeted(4000, 4000, float("nan"), 0)}
    summary = summarize(plan, {"sqlite": held}, behind).figures
    row = summary["max sustained creates/s of those run (p99 <= 100 ms, 0 lost)"]
    assert row == {"tidings (sqlite)": ">= 2,000/s", "node": "< 1,000/s"}


def test_compare_refuses_unknown_stores_and_bad_rates() -> None:
    parser = build_parser()
    for bad in (["--stores", "mysql"], ["--rate", "0"], ["--rate", "fast"],
                ["--scenarios", "soak"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["compare", *bad])


async def test_bulk_on_a_scratch_postgresql_database_stores_and_delivers_every_item(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bulk.json"
    args = build_parser().parse_args([
        "bulk", "--database-url", "postgres", "--clients", "20", "--count", "250",
        "--batch", "100", "--concurrency", "2", "--processes", "0", "--no-pin",
        "--settle", "5", "--jwt-secret", SECRET, "--json", str(out),
    ])
    assert await main_async(args) == 0
    figures = json.loads(out.read_text())["reports"][0]["figures"]
    assert figures["created"] == figures["received"] == 250
    assert figures["lost"] == 0 and figures["create_errors"] == 0
    assert await _bench_databases("bulk") == set()
