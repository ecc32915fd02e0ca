"""`python -m benchmarks create-cost` and `step-cost` at a tiny size: every create answers
201 and the escalated ones write their type's two steps; every queued email, and every
step that adds one, reaches the loopback SMTP sink and ends `sent` (the steps `done`);
the PostgreSQL run's scratch database is gone afterwards. Timing figures belong to the
benchmark (docs/BENCHMARKS.md), not here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import build_parser, main_async
from benchmarks.deliverystack import Config
from benchmarks.escbench import create_cost, step_cost
from tests.conftest import SECRET
from tests.test_bench_compare import _bench_databases

pytestmark = pytest.mark.bench


def _config() -> Config:
    return Config(jwt_secret=SECRET, database_url="", batch_size=20, pin=False)


@pytest.mark.parametrize("variant", ["plain", "escalated"])
async def test_creates_all_answer_and_only_the_escalated_ones_write_steps(variant: str) -> None:
    report = await create_cost(_config(), variant, rate=20, duration_s=1, warmup_s=0.5)
    figures = report.figures
    assert figures["created"] == 20 and figures["create_errors"] == 0, report.table()
    # Warm-up and measured creates alike: two steps each, or none.
    assert figures["steps_written"] == (60 if variant == "escalated" else 0)
    assert figures["server_cpu_ms_per_create"] > 0


async def test_every_step_runs_once_and_its_email_reaches_the_sink() -> None:
    report = await step_cost(_config(), "escalated", count=40, timeout_s=60)
    figures = report.figures
    assert figures["received"] == 40, report.table()
    assert figures["statuses"] == {"sent": 40}
    assert figures["steps"] == {"done": 40}


async def test_step_cost_from_the_command_line_on_postgres_drops_its_database(
    tmp_path: Path,
) -> None:
    out = tmp_path / "steps.json"
    before = await _bench_databases("delivery")
    args = build_parser().parse_args([
        "step-cost", "--variant", "email", "--count", "30", "--database-url", "postgres",
        "--batch-size", "20", "--no-pin", "--jwt-secret", SECRET, "--json", str(out),
    ])
    assert await main_async(args) == 0
    figures = json.loads(out.read_text())["reports"][0]["figures"]
    assert figures["statuses"] == {"sent": 30} and figures["steps"] == {}
    assert await _bench_databases("delivery") == before
