"""The many-node benchmark scenarios at a tiny size: each starts its own redis-server,
PostgreSQL database and servers, loses nothing and reports its figures. Timings belong to
the benchmark (docs/BENCHMARKS.md), never to these assertions."""

from __future__ import annotations

import argparse
import asyncio
import os

import pytest

from benchmarks import nodes, rediscost, resubscribe
from benchmarks.__main__ import build_parser, main_async
from benchmarks.manynodes_cli import SCENARIOS
from tests.conftest import PG_DSN, SECRET
from tests.redis_servers import redis_binaries_missing

pytestmark = pytest.mark.bench


@pytest.fixture(autouse=True)
def _needs_redis_and_postgresql(pg_template: str) -> None:
    """`pg_template` skips (or fails under CI=true) without PostgreSQL."""
    missing = redis_binaries_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} (required under CI=true)")
        pytest.skip(missing)


@pytest.mark.parametrize("kind", ["tidings", "pysio"])
async def test_two_nodes_on_one_redis_lose_nothing_and_report_cpu_per_node(kind: str) -> None:
    reports = await nodes.scaling(kind, [1, 2], SECRET, clients=20, rate=10, duration_s=2,
                                  settle_s=10, admin_url=PG_DSN, idle_s=0.2)
    assert [r.figures["nodes"] for r in reports] == [1, 2]
    for report in reports:
        figures = report.figures
        assert figures["connected"] == 20, report.table()
        assert figures["created"] == 20 and figures["create_errors"] == 0, report.table()
        assert figures["received"] == figures["expected"] == 20, report.table()
        assert figures["lost"] == figures["misrouted"] == 0
        assert len(figures["node_cpu_s"]) == figures["nodes"]
        assert figures["node_cpu_max_over_one_node"] >= 0


async def test_a_channel_notification_reports_redis_cpu_and_loses_nothing() -> None:
    report = await rediscost.channel_cost(SECRET, subscribers=20, rounds=2, settle_s=10,
                                          admin_url=PG_DSN)
    figures = report.figures
    assert figures["subscribed"] == 20, report.table()
    assert figures["rounds"] == 2 and figures["lost"] == 0, report.table()
    assert len(figures["redis_cpu_ms_each"]) == len(figures["redis_idle_cpu_ms_each"]) == 2


async def test_connects_with_and_without_redis_are_both_measured() -> None:
    report = await rediscost.connect_latency(SECRET, clients=5, admin_url=PG_DSN)
    figures = report.figures
    assert figures["with_redis_connected"] == figures["without_redis_connected"] == 5
    assert figures["failed"] == 0
    assert "p95_difference_ms" in figures


async def test_held_users_are_all_subscribed_again_after_a_redis_restart() -> None:
    report = await resubscribe.resubscribe(users=500, rounds=2, timeout_s=30,
                                           admin_url=PG_DSN)
    figures = report.figures
    assert figures["rounds"] == 2, report.table()
    assert None not in figures["resubscribe_s_each"], report.table()
    assert figures["first_subscribe_s"] is not None


def test_the_scenarios_are_on_the_command_line() -> None:
    parser = build_parser()
    for name in SCENARIOS:
        assert parser.parse_args([name]).scenario == name
    assert parser.parse_args(["nodes", "--nodes", "1,2,4"]).nodes == [1, 2, 4]
    with pytest.raises(SystemExit):
        parser.parse_args(["nodes", "--nodes", "0"])


async def test_the_command_line_runs_a_scenario_and_writes_json(tmp_path: object) -> None:
    out = os.path.join(str(tmp_path), "out.json")
    args: argparse.Namespace = build_parser().parse_args(
        ["resubscribe", "--users", "50", "--rounds", "1", "--admin-url", PG_DSN,
         "--json", out])
    assert await main_async(args) == 0
    assert await asyncio.to_thread(os.path.getsize, out) > 0
