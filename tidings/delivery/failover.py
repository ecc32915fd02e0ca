"""Several providers of one medium, tried in order within one attempt (contract section
14): only a transient failure moves on to the next; a sent or permanent answer ends the
attempt. A provider whose circuit breaker is open is not asked at all.

Guarantees: `send` never raises for a provider's failure; it answers every provider it
asked, in order, each `Attempt` naming its `provider`. When no provider could be asked
(every breaker open) it answers one transient attempt whose `retry_after_s` is the time
until the first breaker lets a request through, so the delivery is retried then and never
lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

from tidings.delivery.breaker import CircuitBreaker
from tidings.delivery.outcome import Attempt, Outcome

M = TypeVar("M", contravariant=True)
T = TypeVar("T")

ALL_PAUSED = "every provider is paused after repeated failures (circuit breaker open)"


class Provider(Protocol[M]):
    async def send(self, message: M) -> Attempt:
        """Never raises for a provider or network failure."""
        ...

    async def close(self) -> None:
        ...


@dataclass(frozen=True, slots=True)
class Named(Generic[T]):
    name: str
    provider: Provider[T]
    breaker: CircuitBreaker


class Failover(Generic[T]):
    """The providers of one medium in the order they are tried."""

    def __init__(self, providers: Sequence[Named[T]]) -> None:
        if not providers:
            raise ValueError("a failover needs at least one provider")
        self._providers = tuple(providers)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(named.name for named in self._providers)

    def breaker(self, name: str) -> CircuitBreaker:
        return next(named.breaker for named in self._providers if named.name == name)

    async def send(self, message: T) -> list[Attempt]:
        tried: list[Attempt] = []
        for named in self._providers:
            if not named.breaker.allow():
                continue
            try:
                answered = await named.provider.send(message)
            except Exception:
                # A sender bug counts as a failure (the dispatcher retries the delivery),
                # and never leaves a half-open trial claimed forever.
                named.breaker.failed()
                raise
            except BaseException:  # cancelled: no answer either way
                named.breaker.abandoned()
                raise
            attempt = replace(answered, provider=named.name)
            tried.append(attempt)
            if attempt.outcome is Outcome.TRANSIENT:
                named.breaker.failed()
                continue
            named.breaker.succeeded()
            break
        if not tried:
            # Retried when the first provider may be tried again, not before.
            wait = min(named.breaker.remaining_s() for named in self._providers)
            tried.append(Attempt(Outcome.TRANSIENT, code="breaker_open", error=ALL_PAUSED,
                                 retry_after_s=wait or None))
        return tried

    async def close(self) -> None:
        for named in self._providers:
            await named.provider.close()
