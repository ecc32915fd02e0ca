"""Retry policy: delays with jitter, Retry-After, and giving up (with a fixed random seed
and a fixed clock: no sleeping)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tidings.queue.retry import JITTER, RetryPolicy

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_retries=4, delays_s=(1.0, 5.0, 30.0, 300.0))


@pytest.mark.parametrize(("attempts", "base"), [(1, 1.0), (2, 5.0), (3, 30.0), (4, 300.0)])
def test_each_retry_waits_its_delay_within_the_jitter(attempts: int, base: float) -> None:
    rng = random.Random(7)
    waits = [(POLICY.after_transient(attempts, None, NOW, rng).due_at - NOW).total_seconds()
             for _ in range(200)]
    assert all(base * (1 - JITTER) <= w <= base * (1 + JITTER) for w in waits)
    assert max(waits) - min(waits) > base * JITTER  # really spread, not one value


def test_the_retry_after_is_used_when_longer_and_capped_at_an_hour() -> None:
    rng = random.Random(1)
    longer = POLICY.after_transient(1, 120.0, NOW, rng)
    assert longer.status == "pending" and longer.due_at == NOW + timedelta(seconds=120)
    shorter = POLICY.after_transient(3, 1.0, NOW, rng)
    assert (shorter.due_at - NOW).total_seconds() >= 30 * (1 - JITTER)
    capped = POLICY.after_transient(1, 86_400.0, NOW, rng)
    assert capped.due_at == NOW + timedelta(hours=1)


def test_dead_after_the_last_retry() -> None:
    rng = random.Random(3)
    assert POLICY.after_transient(4, None, NOW, rng).status == "pending"
    assert POLICY.after_transient(5, None, NOW, rng).status == "dead"
    assert RetryPolicy(0, (1.0,)).after_transient(1, None, NOW, rng).status == "dead"


def test_more_retries_than_delays_reuse_the_last_delay() -> None:
    policy = RetryPolicy(max_retries=10, delays_s=(2.0,))
    wait = (policy.after_transient(7, None, NOW, random.Random(0)).due_at - NOW)
    assert 2 * (1 - JITTER) <= wait.total_seconds() <= 2 * (1 + JITTER)
