"""Escalation (contract section 12): steps that, some time after a notification became
visible, bring it through more media unless it reached a state first.

The step's rule (bounds, media) is the types catalogue's `EscalationStep`, one for a
create and for a type; this module holds what the rules and the queue share once a step
is validated: its plan, its stored states, and what "reached" means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tidings.domain.model import Medium


class StepState(StrEnum):
    PENDING = "pending"  # waits for its time
    RUNNING = "running"  # claimed by a worker under a lease
    DONE = "done"  # its deliveries were written
    CANCELED = "canceled"  # the notification reached `unless` first, or is gone


class Unless(StrEnum):
    SEEN = "seen"
    READ = "read"
    DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class StepPlan:
    """One validated step: after `after_seconds`, unless `unless`, deliveries for
    `media`."""

    after_seconds: int
    unless: Unless
    media: tuple[Medium, ...]

    @classmethod
    def of(cls, step: Mapping[str, Any]) -> StepPlan:
        """From a validated step's JSON (a create's or one stored in the catalogue)."""
        return cls(int(step["after_seconds"]), Unless(step["unless"]),
                   tuple(Medium(medium) for medium in step["media"]))


def plans_of(steps: Iterable[Mapping[str, Any]]) -> tuple[StepPlan, ...]:
    return tuple(StepPlan.of(step) for step in steps)


@dataclass(frozen=True, slots=True)
class NewStep:
    """One step's row, written with its notification: numbered 1, 2, 3."""

    notification_id: str
    step: int
    due_at: datetime
    unless: Unless
    media: tuple[Medium, ...]
    created_at: datetime
    digest: tuple[str, int] | None = None  # the create's own (key, window seconds)


def new_steps(notification_id: str, plans: Iterable[StepPlan], start: datetime,
              now: datetime, digest: tuple[str, int] | None = None) -> list[NewStep]:
    """The rows of a notification's steps, due `after_seconds` after `start` (its
    `scheduled_at`, or its `created_at`)."""
    return [NewStep(notification_id, number, start + timedelta(seconds=plan.after_seconds),
                    plan.unless, plan.media, now, digest)
            for number, plan in enumerate(plans, start=1)]


@dataclass(frozen=True, slots=True)
class ClaimedStep:
    """A step a worker holds until it finishes it under `lease_token`, or the lease
    ends."""

    id: int
    notification_id: str
    step: int
    unless: Unless
    media: tuple[Medium, ...]
    lease_token: str
    digest: tuple[str, int] | None = None  # the create's own (key, window seconds)
