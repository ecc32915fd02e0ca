"""SQL of escalation steps (contract section 12): write them with their notification,
claim the due ones under a lease, tell whether a notification reached a step's `unless`,
and end a step.

The claim is the delivery queue's (`store/queue.py`): one UPDATE ... RETURNING over the
due rows, SKIP LOCKED on PostgreSQL, a fresh lease token each time; a step whose worker
died falls due again when its lease ends, and ending it checks the token, so a step runs
once however many workers there are."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.escalation import ClaimedStep, NewStep, StepState, Unless
from tidings.domain.model import Medium, Status
from tidings.store.tables import escalation_steps as steps
from tidings.store.tables import notification_deliveries as deliveries
from tidings.store.tables import notifications

# Exactly the predicate of the partial index `ix_escalation_steps_due`, as literal SQL.
WAITING = sa.text("state IN ('pending', 'running')")


async def insert_many(conn: AsyncConnection, rows: Sequence[NewStep]) -> None:
    """The steps of a batch of creations, in one INSERT (callers skip it when empty)."""
    if not rows:
        return
    await conn.execute(steps.insert(), [
        {"notification_id": row.notification_id, "step": row.step, "due_at": row.due_at,
         "unless": str(row.unless), "media": [str(medium) for medium in row.media],
         "digest_key": row.digest[0] if row.digest else None,
         "digest_window": row.digest[1] if row.digest else None,
         "state": StepState.PENDING, "next_attempt_at": row.due_at,
         "created_at": row.created_at, "updated_at": row.created_at}
        for row in rows
    ])


async def claim(conn: AsyncConnection, now: datetime, limit: int,
                lease_s: float) -> list[ClaimedStep]:
    """Take up to `limit` due steps (earliest first), `running` under a fresh lease until
    `now + lease_s`; when it ends, the step is due again by itself."""
    due = (
        sa.select(steps.c.id)
        .where(WAITING, steps.c.next_attempt_at <= now)
        .order_by(steps.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    until = now + timedelta(seconds=lease_s)
    result = await conn.execute(
        steps.update()
        .where(steps.c.id.in_(due.scalar_subquery()))
        .values(state=StepState.RUNNING, lease_token=str(uuid.uuid4()),
                next_attempt_at=until, updated_at=now)
        .returning(steps.c.id, steps.c.notification_id, steps.c.step, steps.c.unless,
                   steps.c.media, steps.c.lease_token, steps.c.digest_key,
                   steps.c.digest_window)
    )
    claimed = [ClaimedStep(id, notification_id, step, Unless(unless),
                           tuple(Medium(medium) for medium in media), token,
                           (key, window) if key is not None and window is not None else None)
               for id, notification_id, step, unless, media, token, key, window in result]
    claimed.sort(key=lambda item: item.id)
    return claimed


async def finish(conn: AsyncConnection, step: ClaimedStep, state: StepState,
                 now: datetime) -> bool:
    """End a claimed step, if it is still held under its lease (False: the lease ended
    and another worker took it; this one must write nothing)."""
    result = await conn.execute(
        steps.update()
        .where(steps.c.id == step.id, steps.c.lease_token == step.lease_token,
               steps.c.state == StepState.RUNNING)
        .values(state=state, lease_token=None, next_attempt_at=now, updated_at=now)
    )
    return bool(result.rowcount)


async def next_due(conn: AsyncConnection) -> datetime | None:
    """When the next step falls due (None: none waits)."""
    result = await conn.execute(sa.select(sa.func.min(steps.c.next_attempt_at))
                                .where(WAITING))
    value: datetime | None = result.scalar_one_or_none()
    return value


def reached_delivered() -> sa.ColumnElement[bool]:
    return notifications.c.status.in_((Status.DELIVERED, Status.READ))


def reached_read() -> sa.ColumnElement[bool]:
    return notifications.c.status == Status.READ


def reached_seen() -> sa.ColumnElement[bool]:
    """Seen: marked seen (the bell opened), or read (reading implies seeing)."""
    return sa.or_(notifications.c.status == Status.READ, notifications.c.seen_at.is_not(None))


_REACHED = {Unless.DELIVERED: reached_delivered, Unless.READ: reached_read,
            Unless.SEEN: reached_seen}


@dataclass(frozen=True, slots=True)
class Target:
    """What a due step needs of its notification."""

    user_id: str
    channel: str
    type: str
    in_app: bool
    reached: bool  # it reached the step's `unless`
    priority: str = "medium"  # its deliveries' place in the claim's order


async def target(conn: AsyncConnection, notification_id: str, unless: Unless,
                 now: datetime) -> Target | None:
    """The step's notification and whether it reached `unless`; None when it is gone:
    deleted, canceled, or expired by `now` (no medium carries it any more)."""
    result = await conn.execute(
        sa.select(notifications.c.user_id, notifications.c.channel, notifications.c.type,
                  notifications.c.in_app, _REACHED[unless](), notifications.c.priority)
        .where(notifications.c.id == notification_id,
               notifications.c.status != Status.CANCELED,
               sa.or_(notifications.c.expires_at.is_(None), notifications.c.expires_at > now))
    )
    row = result.first()
    return None if row is None else Target(row[0], row[1], row[2], bool(row[3]), bool(row[4]),
                                           row[5])


async def show_in_app(conn: AsyncConnection, notification_id: str) -> None:
    """A step's in-app medium for a notification that had none: listed from now on."""
    await conn.execute(notifications.update().where(notifications.c.id == notification_id)
                       .values(in_app=True))


async def media_written(conn: AsyncConnection, notification_id: str) -> dict[str, int]:
    """The media the notification already has a live delivery of (not skipped or dead),
    with the earliest step that wrote each."""
    result = await conn.execute(
        sa.select(deliveries.c.medium, sa.func.min(deliveries.c.step))
        .where(deliveries.c.notification_id == notification_id,
               deliveries.c.webhook_id.is_(None),
               deliveries.c.status.not_in(("skipped", "dead")))
        .group_by(deliveries.c.medium)
    )
    return {medium: int(step) for medium, step in result}




async def purge_ended(conn: AsyncConnection, before: datetime) -> int:
    """Retention: steps that ended (done or canceled) before `before`."""
    result = await conn.execute(
        steps.delete().where(steps.c.state.in_((StepState.DONE, StepState.CANCELED)),
                             steps.c.updated_at < before))
    return int(result.rowcount or 0)
