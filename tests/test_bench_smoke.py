"""The benchmark's smoke scenario as a test: many connections, a steady rate of creates,
and not one notification lost. Timing figures belong to the benchmark, not here."""

from __future__ import annotations

import pytest

import benchmarks.smoke
from tests.conftest import SECRET, RunningServer

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_thousand_connections_at_200_per_second_lose_nothing(
    server: RunningServer,
) -> None:
    result = await benchmarks.smoke.run(server.url, SECRET, clients=1000, rate=200,
                                        duration=10)
    assert result.ok, result.report.table()
    assert result.created == 2000
    assert result.received == result.expected == result.created
    assert result.lost == 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_smoke_on_postgresql_loses_nothing(server: RunningServer) -> None:
    result = await benchmarks.smoke.run(server.url, SECRET, clients=300, rate=100,
                                        duration=3)
    assert result.ok, result.report.table()
    assert result.received == result.created == 300
