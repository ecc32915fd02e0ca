"""The per-socket event budget, the socket cap and the rate notation, in-process with a
hand-turned clock."""

from __future__ import annotations

import pytest
from limits.aio.storage import MemoryStorage
from pydantic import ValidationError

from tests.conftest import make_settings
from tidings.config.settings import Settings, check_rate, describe
from tidings.domain.errors import PayloadTooLarge, RateLimited, TooManyConnections
from tidings.services.rate_limits import CreateLimit, EventBudget, SocketCap, parse_rate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_socket_may_spend_its_budget_then_is_refused_until_the_window_ends() -> None:
    clock = Clock()
    budget = EventBudget(parse_rate("3/minute"), clock)
    for _ in range(3):
        budget.spend("s1")
    clock.now += 20
    with pytest.raises(RateLimited) as caught:
        budget.spend("s1")
    assert caught.value.retry_after == 40
    assert caught.value.body() == {"code": "rate_limited", "retry_after": 40,
                                   "message": caught.value.message}
    budget.spend("s2")  # another socket has its own budget
    clock.now += 40
    budget.spend("s1")  # a new window


def test_retry_after_is_at_least_one_second() -> None:
    clock = Clock()
    budget = EventBudget(parse_rate("1/second"), clock)
    budget.spend("s1")
    clock.now += 0.999
    with pytest.raises(RateLimited) as caught:
        budget.spend("s1")
    assert caught.value.retry_after == 1


def test_a_forgotten_socket_starts_afresh() -> None:
    budget = EventBudget(parse_rate("1/hour"), Clock())
    budget.spend("s1")
    budget.forget("s1")
    budget.forget("never-seen")
    budget.spend("s1")


def test_no_rate_is_no_limit() -> None:
    budget = EventBudget(parse_rate(""), Clock())
    for _ in range(1000):
        budget.spend("s1")


@pytest.mark.parametrize(("cap", "open_sockets", "admitted"),
                         [(2, 0, True), (2, 1, True), (2, 2, False), (2, 5, False),
                          (0, 10_000, True)])
def test_socket_cap(cap: int, open_sockets: int, admitted: bool) -> None:
    if admitted:
        SocketCap(cap).admit(open_sockets)
    else:
        with pytest.raises(TooManyConnections, match=r"^Too many connections$"):
            SocketCap(cap).admit(open_sockets)


@pytest.mark.parametrize(("value", "stored"),
                         [("200/second", "200/second"), (" 3 per minute ", "3 per minute"),
                          ("10/hour", "10/hour"), ("0", ""), ("", ""), ("  ", "")])
def test_rates_in_the_limits_notation(value: str, stored: str) -> None:
    assert check_rate(value) == stored


@pytest.mark.parametrize("value", ["lots", "10", "5/fortnight", "1/second;2/minute", "-1/s"])
def test_other_rates_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="is not a rate"):
        check_rate(value)


def test_a_bad_rate_in_the_environment_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RATE_LIMIT_SOCKET_EVENTS", "fast")
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert describe(caught.value).endswith(
        "\n  RATE_LIMIT_SOCKET_EVENTS: 'fast' is not a rate like '200/second' (or '0' for no "
        "limit)")


def test_defaults() -> None:
    settings = make_settings("sqlite://")
    assert settings.rate_limit_creates == "10000/second"
    assert settings.rate_limit_socket_events == "50/second"
    assert settings.max_sockets_per_user == 50
    assert settings.channel_rules is None


@pytest.mark.parametrize(("rate", "said"),
                         [("3/minute", "3 events per minute"),
                          ("50 per 10 seconds", "50 events per 10 seconds")])
def test_refusals_say_the_rate_in_words(rate: str, said: str) -> None:
    budget = EventBudget(parse_rate(rate), Clock())
    for _ in range(int(rate.split("/")[0].split()[0])):
        budget.spend("s1")
    with pytest.raises(RateLimited, match=f"^this socket may send {said}: retry in "):
        budget.spend("s1")


async def test_a_create_is_charged_its_notifications_all_or_nothing() -> None:
    limit = CreateLimit(parse_rate("5/minute"), MemoryStorage())
    await limit.check("billing", 3)
    with pytest.raises(RateLimited):
        await limit.check("billing", 3)  # 6 > 5: refused, and not counted
    await limit.check("billing", 2)  # so the 2 left are still there
    with pytest.raises(RateLimited):
        await limit.check("billing", 1)
    await limit.check("shipping", 5)  # each producer has its own budget


async def test_more_than_a_whole_window_is_too_large_not_a_retry() -> None:
    limit = CreateLimit(parse_rate("5/minute"), MemoryStorage())
    with pytest.raises(PayloadTooLarge) as caught:
        await limit.check("billing", 6, "user_ids")
    assert caught.value.field == "user_ids"
    assert "RATE_LIMIT_CREATES" in caught.value.message
    await limit.check("billing", 5)  # nothing was counted
    await limit.check("billing", 0)  # a channel without subscribers costs nothing


async def test_an_off_limit_counts_nothing() -> None:
    limit = CreateLimit(None, MemoryStorage())
    assert not limit.active
    await limit.check("billing", 10**9)
