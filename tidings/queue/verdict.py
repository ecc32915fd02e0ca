"""The verdict on one try of a delivery: from the provider's answers to a settlement
(sent, a retry at a time the policy picks, or dead), with every answer kept as a record
of the delivery's history."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime

from tidings.delivery.outcome import Attempt, Outcome
from tidings.domain.delivery import AttemptRecord
from tidings.domain.model import DeliveryStatus
from tidings.queue.retry import RetryPolicy
from tidings.store.queue import Claimed, Settlement

SENT, PENDING, DEAD = DeliveryStatus.SENT, DeliveryStatus.PENDING, DeliveryStatus.DEAD


class Verdicts:
    """Holds the retry policy, the clock and the jitter's randomness; no state between
    tries."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], datetime],
                 rng: random.Random) -> None:
        self._policy = policy
        self._clock = clock
        self._rng = rng

    def targets(self, claimed: Claimed, attempts: Sequence[Attempt], *,
                reached_before: bool) -> Settlement:
        """One answer per target (a device each, for push): sent if any target took it
        (and none is left to retry); a retry while some target failed transiently and
        retries remain; else dead."""
        return self._settle(claimed, attempts, attempts, reached_before=reached_before)

    def failover(self, claimed: Claimed, tried: Sequence[Attempt]) -> Settlement:
        """One target, tried through several providers in turn: the last answer decides
        (earlier ones were transient, or the failover would have stopped), and every
        provider's answer is a record of this one attempt."""
        return self._settle(claimed, tried[-1:], tried, reached_before=False)

    def _settle(self, claimed: Claimed, attempts: Sequence[Attempt],
                recorded: Sequence[Attempt], *, reached_before: bool) -> Settlement:
        now = self._clock()
        records = tuple(_record(a, now) for a in recorded)
        sent = [a for a in attempts if a.outcome is Outcome.SENT]
        transient = [a for a in attempts if a.outcome is Outcome.TRANSIENT]
        errors = [a for a in attempts if a.outcome is not Outcome.SENT]
        last_error = _describe(errors[-1]) if errors else None
        provider_id = sent[0].provider_id if sent else None
        delivered = bool(sent) or reached_before
        if transient:
            wait = max((a.retry_after_s or 0.0) for a in transient) or None
            verdict = self._policy.after_transient(claimed.attempts, wait, now, self._rng)
            if verdict.status == PENDING:
                return Settlement(claimed, PENDING, verdict.due_at, last_error, provider_id,
                                  records)
        status = SENT if delivered else DEAD
        return Settlement(claimed, status, None, None if status == SENT else last_error,
                          provider_id, records)


def _record(attempt: Attempt, now: datetime) -> AttemptRecord:
    return AttemptRecord(
        at=now, outcome=attempt.outcome.value, code=attempt.code,
        error=(attempt.error or None) and attempt.error[:1000],
        provider_id=attempt.provider_id, device_id=attempt.device_id,
        elapsed_ms=int(attempt.elapsed_s * 1000), provider=attempt.provider,
    )


def _describe(attempt: Attempt) -> str:
    parts = [attempt.outcome.value]
    if attempt.provider:
        parts.append(attempt.provider)
    if attempt.code:
        parts.append(attempt.code)
    if attempt.error:
        parts.append(attempt.error)
    return ": ".join(parts)[:1000]
