"""When a failed delivery is tried again, and when it is given up (contract section 8).

Data, not control flow: the policy turns "attempt n ended like this" into the delivery's
next status and due time; the queue only stores what it says.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tidings.delivery.outcome import MAX_RETRY_AFTER_S
from tidings.domain.model import DeliveryStatus

JITTER = 0.2  # each delay is stretched or shrunk by up to this share, so retries spread


@dataclass(frozen=True, slots=True)
class Verdict:
    status: DeliveryStatus  # pending (retry) or dead
    due_at: datetime | None = None  # for a retry


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int  # MAX_RETRY_ATTEMPTS: retries after the first try
    delays_s: Sequence[float]  # RETRY_DELAYS: the wait before retry 1, 2, ...

    def retry_delay(self, attempts: int, retry_after_s: float | None,
                    rng: random.Random) -> float:
        """The wait after the `attempts`-th try failed transiently: that try's delay with
        jitter, or the provider's Retry-After when longer (capped)."""
        delays = self.delays_s or (60.0,)
        base = delays[min(attempts, len(delays)) - 1]
        delay = base * (1 + rng.uniform(-JITTER, JITTER))
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
        return delay

    def after_transient(self, attempts: int, retry_after_s: float | None, now: datetime,
                        rng: random.Random) -> Verdict:
        """`attempts` tries have been made (this one included), the last transiently
        failed: retry, or dead once the retries are used up."""
        if attempts > self.max_retries:
            return Verdict(DeliveryStatus.DEAD)
        delay = self.retry_delay(attempts, retry_after_s, rng)
        return Verdict(DeliveryStatus.PENDING, now + timedelta(seconds=delay))
