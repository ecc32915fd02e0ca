"""When to try a request again, and after how long: exponential backoff with jitter,
raised to the server's `Retry-After`, bounded by a number of attempts and by a total
deadline. Pure decisions (no sleeping here), shared by the sync and the async client."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tidings.client.errors import RateLimited, TidingsError, Unavailable, error_from_body

# Answers worth another try: rate limited, and the server (or a proxy before it) not ready.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` counts the first try; `deadline` (seconds) bounds the whole call,
    waits included: a wait that would end past it is not started, and the last error is
    raised instead. `attempts=1` turns retries off."""

    attempts: int = 5
    initial_delay: float = 0.2
    max_delay: float = 10.0
    deadline: float = 30.0

    def backoff(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """The wait before retry number `retry` (1 for the first): half of the
        exponential step fixed, half random, so clients that failed together spread."""
        step = min(self.max_delay, self.initial_delay * 2.0 ** (retry - 1))
        return step / 2 + rng() * step / 2


@dataclass(slots=True)
class Attempts:
    """The state of one call's retries. `clock` is monotonic seconds."""

    policy: RetryPolicy
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    made: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def remaining(self) -> float:
        return max(0.0, self.policy.deadline - (self.clock() - self.started))

    def begin(self, timeout: float) -> float:
        """Count an attempt; answers its timeout: `timeout`, cut to what the deadline
        leaves."""
        self.made += 1
        return max(0.001, min(timeout, self.remaining()))

    def wait_after(self, failure: TidingsError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up and raise."""
        if failure.status is not None and failure.status not in RETRY_STATUSES:
            return None
        if self.made >= self.policy.attempts:
            return None
        wait = self.policy.backoff(self.made)
        if isinstance(failure, RateLimited) and failure.retry_after is not None:
            wait = max(wait, failure.retry_after)
        return wait if wait < self.remaining() else None


def failure_of(response: httpx.Response) -> TidingsError:
    """The typed error of an unsuccessful answer (its body may not even be JSON)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_from_body(response.status_code, body,
                           retry_after=_retry_after(response.headers.get("Retry-After")))


def network_failure(exc: httpx.TransportError) -> Unavailable:
    return Unavailable(f"no answer from Tidings: {exc!r}", code="network_error")


def _retry_after(value: str | None) -> float | None:
    # Tidings sends delta-seconds; an HTTP date (allowed by RFC 9110) is read as 'soon'.
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0
