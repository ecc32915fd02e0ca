"""The provider failover and its circuit breaker, in process with a stepped clock: which
provider is asked, in which order, and when a paused one is asked again."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tidings.delivery.breaker import BreakerState, CircuitBreaker
from tidings.delivery.failover import Failover, Named
from tidings.delivery.outcome import Attempt, Outcome
from tidings.delivery.sms.sender import MAX_SMS_CHARS, sms_text


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Scripted:
    """A provider answering the given outcomes in turn, then the last one forever."""

    outcomes: list[Outcome]
    asked: int = 0
    closed: bool = field(default=False)

    async def send(self, message: str) -> Attempt:
        self.asked += 1
        return Attempt(self.outcomes[min(self.asked, len(self.outcomes)) - 1])

    async def close(self) -> None:
        self.closed = True


def chain(clock: Clock, *providers: tuple[str, Scripted], failures: int = 2,
          cool_down: float = 30.0) -> Failover[str]:
    return Failover([Named(name, provider, CircuitBreaker(failures, cool_down, clock))
                     for name, provider in providers])


async def test_a_transient_failure_moves_on_and_a_sent_answer_stops() -> None:
    first, second, third = (Scripted([Outcome.TRANSIENT]), Scripted([Outcome.SENT]),
                            Scripted([Outcome.SENT]))
    tried = await chain(Clock(), ("a", first), ("b", second), ("c", third)).send("hi")
    assert [(a.provider, a.outcome) for a in tried] == [("a", Outcome.TRANSIENT),
                                                        ("b", Outcome.SENT)]
    assert third.asked == 0


async def test_a_permanent_answer_does_not_move_on() -> None:
    second = Scripted([Outcome.SENT])
    tried = await chain(Clock(), ("a", Scripted([Outcome.PERMANENT])), ("b", second)).send("x")
    assert [a.outcome for a in tried] == [Outcome.PERMANENT] and second.asked == 0


async def test_the_breaker_opens_after_failures_in_a_row_and_half_opens_after_cool_down(
) -> None:
    clock = Clock()
    flaky = Scripted([Outcome.TRANSIENT, Outcome.TRANSIENT, Outcome.TRANSIENT, Outcome.SENT])
    spare = Scripted([Outcome.SENT])
    failover = chain(clock, ("flaky", flaky), ("spare", spare), failures=2, cool_down=30)
    breaker = failover.breaker("flaky")
    for _ in range(2):
        await failover.send("m")
    assert breaker.state is BreakerState.OPEN and flaky.asked == 2
    assert [a.provider for a in await failover.send("m")] == ["spare"]  # not asked
    clock.now += 30
    assert breaker.state is BreakerState.HALF_OPEN
    # The trial fails: open again for a whole cool-down.
    assert [a.provider for a in await failover.send("m")] == ["flaky", "spare"]
    assert breaker.state is BreakerState.OPEN
    clock.now += 30
    assert [(a.provider, a.outcome) for a in await failover.send("m")] == [
        ("flaky", Outcome.SENT)]
    assert breaker.state is BreakerState.CLOSED


def test_half_open_lets_one_request_through_at_a_time() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10, clock)
    breaker.failed()
    assert not breaker.allow()
    clock.now += 10
    assert breaker.allow() and not breaker.allow()  # the trial is in flight
    breaker.succeeded()
    assert breaker.allow() and breaker.allow()


def test_a_success_resets_the_count_of_failures_in_a_row() -> None:
    breaker = CircuitBreaker(2, 10, Clock())
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    assert breaker.state is BreakerState.CLOSED


async def test_every_provider_paused_answers_one_transient_attempt_until_the_first_reopens(
) -> None:
    clock = Clock()
    failover = chain(clock, ("a", Scripted([Outcome.TRANSIENT])),
                     ("b", Scripted([Outcome.TRANSIENT])), failures=1, cool_down=30)
    await failover.send("m")
    clock.now += 10
    (paused,) = await failover.send("m")
    assert paused.outcome is Outcome.TRANSIENT and paused.code == "breaker_open"
    assert paused.provider is None and paused.retry_after_s == pytest.approx(20)


async def test_close_closes_every_provider() -> None:
    a, b = Scripted([Outcome.SENT]), Scripted([Outcome.SENT])
    await chain(Clock(), ("a", a), ("b", b)).close()
    assert a.closed and b.closed


def test_a_failover_needs_a_provider() -> None:
    with pytest.raises(ValueError):
        Failover([])


@pytest.mark.parametrize(("text", "expected_length", "cut"), [
    ("short", 5, False),
    ("x" * MAX_SMS_CHARS, MAX_SMS_CHARS, False),
    ("x" * (MAX_SMS_CHARS + 1), MAX_SMS_CHARS, True),
    ("\U0001F600" * 5000, MAX_SMS_CHARS, True),
])
def test_the_sms_text_is_cut_to_1600_code_points(text: str, expected_length: int,
                                                 cut: bool) -> None:
    result = sms_text(text)
    assert len(result) == expected_length
    assert result.endswith("\u2026") is cut


class Broken:
    async def send(self, message: str) -> Attempt:
        raise RuntimeError("a bug")

    async def close(self) -> None:
        pass


async def test_a_sender_that_raises_counts_as_a_failure_and_frees_a_half_open_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10, clock)
    failover: Failover[str] = Failover([Named("broken", Broken(), breaker)])
    with pytest.raises(RuntimeError):
        await failover.send("m")
    assert breaker.state is BreakerState.OPEN
    clock.now += 10
    with pytest.raises(RuntimeError):
        await failover.send("m")  # the half-open trial, which raises too
    clock.now += 10
    assert breaker.allow()  # not stuck: a new trial may go
