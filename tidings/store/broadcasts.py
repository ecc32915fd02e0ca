"""SQL of broadcasts (contract section 13): the half of every user's inbox that all users
share, read together with the user's own state of each broadcast, and the writes of that
state.

A user's inbox is two halves with the same columns: the user's own rows, and the
broadcasts seen through `broadcast_states` (the user's row there, if any, says status,
delivered_at, read_at, seen_at and archived_at; `deleted_at` hides the broadcast). Reads
query each half with the same clauses and merge; writes that find no own row of the
user's try the shared half: they make the user's state row (if the broadcast is visible
and live), then change it with the same conditional UPDATE an own row gets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.broadcast import EVERYONE
from tidings.domain.model import Status
from tidings.store.database import upsert_into
from tidings.store.tables import broadcast_states as states
from tidings.store.tables import broadcasts, notifications

# What a user's own state row overrides in the shared row.
PER_USER = ("delivered_at", "read_at", "seen_at", "archived_at")


@dataclass(frozen=True, slots=True)
class Half:
    """One half of a user's inbox: its columns by name (`cols.status`, ...), where they
    come from, and the clauses that make it that user's."""

    cols: Any
    source: sa.FromClause
    where: tuple[sa.ColumnElement[bool], ...]

    def selected(self, names: Sequence[str]) -> list[sa.ColumnElement[Any]]:
        return [getattr(self.cols, name).label(name) for name in names]


def own_half(user_id: str) -> Half:
    return Half(notifications.c, notifications, (notifications.c.user_id == user_id,))


def shared_half(user: str | sa.ColumnElement[str],
                lead: tuple[sa.FromClause, sa.ColumnElement[bool]] | None = None) -> Half:
    """The broadcasts as `user` sees them: a user id, or a column of one in `lead`, a
    table joined first (on its condition on `broadcasts`), as replay's asks are."""
    n = notifications.c
    first = broadcasts if lead is None else lead[0].join(broadcasts, lead[1])
    joined = first.join(notifications, n.id == broadcasts.c.notification_id).outerjoin(
        states, sa.and_(states.c.notification_id == broadcasts.c.notification_id,
                        states.c.user_id == user))
    cols: dict[str, Any] = {name: n[name] for name in n.keys()}
    cols.update({name: states.c[name] for name in PER_USER})
    # Lists show the caller's own id; a canceled broadcast stays canceled for everyone.
    cols["user_id"] = sa.literal(user, sa.String(255)) if isinstance(user, str) else user
    cols["status"] = sa.case((n.status == Status.CANCELED, n.status),
                             else_=sa.func.coalesce(states.c.status, n.status))
    cols["id"], cols["visible_at"] = broadcasts.c.notification_id, broadcasts.c.visible_at
    return Half(SimpleNamespace(**cols), joined, (states.c.deleted_at.is_(None),))


def halves(user_id: str) -> tuple[Half, Half]:
    return own_half(user_id), shared_half(user_id)


async def insert(conn: AsyncConnection, notification_id: str, visible_at: datetime) -> None:
    await conn.execute(broadcasts.insert().values(notification_id=notification_id,
                                                  visible_at=visible_at))


def _present(now: datetime, expired_too: bool) -> list[sa.ColumnElement[bool]]:
    """Broadcasts a user can act on at `now`: visible, not canceled, and not expired
    unless `expired_too` (as for a user's own rows: an expired one can still be read,
    acknowledged and deleted by id, not archived, seen or read in bulk)."""
    n = notifications.c
    clauses = [broadcasts.c.visible_at <= now, n.status != Status.CANCELED]
    if not expired_too:
        clauses.append(sa.or_(n.expires_at.is_(None), n.expires_at > now))
    return clauses


async def ensure_states(conn: AsyncConnection, user_id: str, now: datetime,
                        ids: Sequence[str] | None, present: list[sa.ColumnElement[bool]],
                        ) -> None:
    """The user's state row of each broadcast `present` holds for (of `ids`, or all),
    made `pending` where there is none yet."""
    clauses = list(present)
    if ids is not None:
        clauses.append(broadcasts.c.notification_id.in_(ids))
    source = sa.select(sa.literal(user_id, sa.String(255)), broadcasts.c.notification_id,
                       notifications.c.status).select_from(
        broadcasts.join(notifications, notifications.c.id == broadcasts.c.notification_id)
    ).where(*clauses)
    statement = upsert_into(conn, states).from_select(
        ["user_id", "notification_id", "status"], source)
    await conn.execute(statement.on_conflict_do_nothing())


def mine(user_id: str, *clauses: sa.ColumnElement[bool]) -> list[sa.ColumnElement[bool]]:
    """The user's state rows still in the inbox (not deleted), narrowed by `clauses`."""
    return [states.c.user_id == user_id, states.c.deleted_at.is_(None), *clauses]


async def change(conn: AsyncConnection, user_id: str, now: datetime,
                 ids: Sequence[str] | None, values: dict[str, Any],
                 *when: sa.ColumnElement[bool],
                 extra: Sequence[sa.ColumnElement[bool]] = (),
                 expired_too: bool = False) -> list[Any]:
    """Set `values` on the user's state of those broadcasts (of `ids`, or all present
    ones, narrowed by `extra` on the notification's columns) where `when` holds; the
    changed rows' (notification_id, delivered_at)."""
    present = [*_present(now, expired_too), *extra]
    await ensure_states(conn, user_id, now, ids, present)
    clauses = mine(user_id, *when)
    if ids is not None:
        clauses.append(states.c.notification_id.in_(ids))
    # A state row outlives its broadcast's cancel (and expiry): gone for everyone.
    still = sa.select(broadcasts.c.notification_id).select_from(
        broadcasts.join(notifications, notifications.c.id == broadcasts.c.notification_id)
    ).where(*present)
    clauses.append(states.c.notification_id.in_(still))
    result = await conn.execute(
        states.update().where(*clauses).values(**values)
        .returning(states.c.notification_id, states.c.delivered_at))
    return list(result)


async def forget(conn: AsyncConnection, ids: Sequence[str]) -> None:
    """The broadcasts of these notifications go, with every user's state of them."""
    if ids:
        await conn.execute(states.delete().where(states.c.notification_id.in_(ids)))
        await conn.execute(broadcasts.delete().where(broadcasts.c.notification_id.in_(ids)))


async def forget_before(conn: AsyncConnection, first_kept_id: str) -> None:
    """Retention: broadcasts (and states) of notifications older than `first_kept_id`
    (ids are time-ordered, so one range is one age)."""
    await conn.execute(states.delete().where(states.c.notification_id < first_kept_id))
    await conn.execute(broadcasts.delete().where(broadcasts.c.notification_id < first_kept_id))


def is_everyone(user_id: str) -> bool:
    return user_id == EVERYONE
