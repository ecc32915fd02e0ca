"""The delivery benchmarks as tests: every queued email reaches the loopback SMTP sink and
is `sent`, and the latency run loses nothing. Their timing figures belong to the
benchmark (docs/BENCHMARKS.md), not here."""

from __future__ import annotations

import pytest

from benchmarks.delivery import email_latency, email_throughput
from benchmarks.deliverystack import Config
from tests.conftest import SECRET

pytestmark = pytest.mark.bench


def _config() -> Config:
    return Config(jwt_secret=SECRET, database_url="", batch_size=20, pin=False)


async def test_one_worker_sends_every_queued_email_to_the_sink() -> None:
    report = await email_throughput(_config(), count=60, timeout_s=60)
    figures = report.figures
    assert figures["queued"] == 60, report.table()
    assert figures["received"] == 60
    assert figures["statuses"] == {"sent": 60}


async def test_email_latency_run_loses_nothing_and_measures_every_message() -> None:
    report = await email_latency(_config(), rate=20, duration_s=1, settle_s=30)
    figures = report.figures
    assert figures["create_errors"] == 0, report.table()
    assert figures["received"] == figures["created"] == 20
    assert figures["lost"] == 0
    assert figures["create_to_smtp_count"] == 20
