"""A circuit breaker per provider: after `failures` transient failures in a row the
provider is skipped for `cool_down_s`; then one request tries it (half-open) and its
answer closes the breaker or opens it for another cool-down.

Per process and in memory: each worker learns for itself that a provider is down, and a
restart forgets it. Guarantees: while open, `allow` answers False without any I/O; while
half-open, only one caller at a time is let through.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, failures: int = 5, cool_down_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = failures
        self._cool_down = cool_down_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False  # a half-open request is in flight

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at < self._cool_down:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def remaining_s(self) -> float:
        """How long the breaker stays open (0 unless open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._cool_down - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Whether a request may go to the provider now (claiming the half-open trial)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._trial:
            return False
        self._trial = True
        return True

    def succeeded(self) -> None:
        """The provider answered (sent, or refused the message for good): it is up."""
        self._failures = 0
        self._opened_at = None
        self._trial = False

    def abandoned(self) -> None:
        """The request went without an answer (cancelled): a half-open trial is free
        again, and nothing is counted."""
        self._trial = False

    def failed(self) -> None:
        """A transient failure: one more in a row; a failed trial opens it again."""
        self._failures += 1
        if self._trial or self._failures >= self._limit:
            self._opened_at = self._clock()
        self._trial = False
