"""`python -m benchmarks http-server` at a tiny size: Tidings on uvicorn with each Socket.IO
transport (and on Granian where it is installed; it is not a dependency), nothing lost,
one report per rate with its CPU per create; the interleaving of the runs, the creates'
body and the summary from made-up figures. Timing figures belong to the benchmark."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import build_parser
from benchmarks.httpserver import InAppSender, Run, one, plan, summarize
from benchmarks.report import Report
from tests.conftest import SECRET

pytestmark = pytest.mark.bench

GRANIAN = Path(sys.executable).with_name("granian")


def test_each_round_runs_every_setup_once_per_store_starting_one_later() -> None:
    runs = plan(["a", "b", "c"], ["sqlite", "postgres"], rounds=2)
    assert [(r.setup, r.store) for r in runs] == [
        ("a", "sqlite"), ("b", "sqlite"), ("c", "sqlite"),
        ("a", "postgres"), ("b", "postgres"), ("c", "postgres"),
        ("b", "sqlite"), ("c", "sqlite"), ("a", "sqlite"),
        ("b", "postgres"), ("c", "postgres"), ("a", "postgres"),
    ]
    assert Run("uvicorn/lean", "sqlite").kind == "tidings"  # `tidings serve` runs uvicorn
    assert Run("granian/python-socketio", "sqlite").kind == "granian"
    assert Run("granian/python-socketio", "sqlite").transport == "python-socketio"


def test_every_create_asks_for_in_app_only() -> None:
    sender = InAppSender(transport=None, run_id="r")  # type: ignore[arg-type]
    key, body = sender._body("u1", 12.5)
    fields = json.loads(body)
    assert fields["media"] == ["in_app"] and fields["user_id"] == "u1"
    assert fields["data"]["bench_key"] == key


def test_the_summary_gives_min_median_max_and_the_runs_that_kept_up() -> None:
    def run(cpu: float, served: float) -> Report:
        return Report("create 500/s", "uvicorn/lean (sqlite)", {
            "server_cpu_ms_per_create": cpu, "create_rate_per_s": served,
            "offered_rate_per_s": 500.0, "lost": 0, "create_errors": 1})

    summary = summarize([run(1.0, 500.0), run(0.5, 300.0), run(2.0, 499.0)])
    row = summary.figures["create 500/s, uvicorn/lean (sqlite)"]
    assert row["rounds"] == 3
    assert row["server_cpu_ms_per_create"] == "0.50 / 1.00 / 2.00"
    assert row["cpu ms/create, runs that kept up"] == "1.50 (2 runs)"
    assert row["lost / create errors"] == "0 / 3"


def test_http_server_refuses_unknown_setups_and_stores() -> None:
    parser = build_parser()
    for bad in (["--setups", "hypercorn/lean"], ["--stores", "mysql"], ["--rates", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["http-server", *bad])


SETUPS = ["uvicorn/lean", "uvicorn/python-socketio"]
if GRANIAN.exists():
    SETUPS += ["granian/lean", "granian/python-socketio"]


@pytest.mark.parametrize("setup", SETUPS)
async def test_a_tiny_run_loses_nothing_and_reports_each_rate(setup: str) -> None:
    args = build_parser().parse_args([
        "http-server", "--clients", "20", "--rates", "20,40", "--duration", "1",
        "--jwt-secret", SECRET, "--no-pin"])
    reports = await one(args, Run(setup, "sqlite"))
    assert [r.scenario for r in reports] == ["create 20/s", "create 40/s"]
    for report in reports:
        f = report.figures
        assert f["connected"] == 20 and f["created"] == f["scheduled"] > 0, report.table()
        assert f["lost"] == 0 and f["create_errors"] == 0, report.table()
        assert f["server_cpu_ms_per_create"] > 0


@pytest.mark.skipif(GRANIAN.exists() or shutil.which("granian") is not None,
                    reason="granian is installed here")
async def test_without_granian_its_setups_say_how_to_get_it() -> None:
    from benchmarks.peers.launch import LaunchError

    args = build_parser().parse_args(["http-server", "--jwt-secret", SECRET, "--no-pin"])
    with pytest.raises(LaunchError, match="pip install granian"):
        await one(args, Run("granian/lean", "sqlite"))
