"""SQL of a user's inbox states (read all, seen, archived) and of a producer's cancel
(DESIGN section 12). Each change is one conditional UPDATE: it touches only the rows it
changes, and answers which (so counts are what the call changed, and racing calls from
several tabs never count a row twice)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.crypto.cipher import FieldCipher
from tidings.domain.model import DeliveryStatus, Medium, Status
from tidings.domain.notification import Notification, StatusChange
from tidings.store import broadcasts
from tidings.store.notifications import COLUMNS, get_owned, live, record_of
from tidings.store.tables import broadcast_states as states
from tidings.store.tables import notification_deliveries as deliveries
from tidings.store.tables import notifications

CANCELED = "canceled by its producer"


def _mine(user_id: str, now: datetime) -> list[sa.ColumnElement[bool]]:
    return [notifications.c.user_id == user_id, notifications.c.visible_at <= now, live(now)]


async def read_all(
    conn: AsyncConnection, user_id: str, now: datetime, channel: str | None, type: str | None,
) -> list[StatusChange]:
    """Every unread notification of the user (of that channel and type) becomes `read`."""
    clauses = [*_mine(user_id, now),
               notifications.c.status.in_([Status.PENDING, Status.FAILED, Status.DELIVERED])]
    if channel is not None:
        clauses.append(notifications.c.channel == channel)
    if type is not None:
        clauses.append(notifications.c.type == type)
    result = await conn.execute(
        notifications.update().where(*clauses).values(
            status=Status.READ, read_at=now,
            delivered_at=sa.func.coalesce(notifications.c.delivered_at, now))
        .returning(notifications.c.id, notifications.c.delivered_at)
    )
    changes = [StatusChange(row.id, user_id, Status.READ, row.delivered_at, now)
               for row in result]
    await _in_app_delivered(conn, [change.id for change in changes], now)
    extra = [notifications.c[name] == value
             for name, value in (("channel", channel), ("type", type)) if value is not None]
    shared = await broadcasts.change(
        conn, user_id, now, None,
        {"status": Status.READ, "read_at": now,
         "delivered_at": sa.func.coalesce(states.c.delivered_at, now)},
        states.c.status.in_([Status.PENDING, Status.FAILED, Status.DELIVERED]), extra=extra)
    return changes + [StatusChange(row.notification_id, user_id, Status.READ,
                                   row.delivered_at, now) for row in shared]


async def _in_app_delivered(conn: AsyncConnection, ids: Sequence[str], now: datetime) -> None:
    if ids:
        await conn.execute(
            deliveries.update()
            .where(deliveries.c.notification_id.in_(ids),
                   deliveries.c.medium == Medium.IN_APP)
            .values(status=DeliveryStatus.DELIVERED, updated_at=now))


async def mark_seen(
    conn: AsyncConnection, user_id: str, now: datetime, ids: Sequence[str] | None,
) -> list[str]:
    """`seen_at` set on those not seen yet (those of `ids`, or all); their ids."""
    clauses = [*_mine(user_id, now), notifications.c.seen_at.is_(None)]
    if ids is not None:
        clauses.append(notifications.c.id.in_(ids))
    result = await conn.execute(
        notifications.update().where(*clauses).values(seen_at=now)
        .returning(notifications.c.id))
    shared = await broadcasts.change(conn, user_id, now, ids, {"seen_at": now},
                                     states.c.seen_at.is_(None))
    return [row.id for row in result] + [row.notification_id for row in shared]


async def set_archived(
    conn: AsyncConnection, user_id: str, notification_id: str, now: datetime, archived: bool,
    *, cipher: FieldCipher | None,
) -> tuple[Notification | None, bool]:
    """Archive (or bring back) one of the user's notifications; (record, changed)."""
    owned = [*_mine(user_id, now), notifications.c.id == notification_id]
    state = (notifications.c.archived_at.is_(None) if archived
             else notifications.c.archived_at.is_not(None))
    result = await conn.execute(
        notifications.update().where(*owned, state)
        .values(archived_at=now if archived else None).returning(*COLUMNS))
    row = result.first()
    if row is not None:
        return record_of(tuple(row), cipher), True
    found = (await conn.execute(sa.select(*COLUMNS).where(*owned))).first()
    if found is not None:
        return record_of(tuple(found), cipher), False
    shared_state = (states.c.archived_at.is_(None) if archived
                    else states.c.archived_at.is_not(None))
    changed = await broadcasts.change(conn, user_id, now, [notification_id],
                                      {"archived_at": now if archived else None},
                                      shared_state)
    record = await get_owned(conn, user_id, notification_id, now, cipher=cipher)
    if record is not None and record.expires_at is not None and record.expires_at <= now:
        record = None  # as `_mine` leaves out a user's own expired notification
    return record, bool(changed) and record is not None


def _cancelable(now: datetime) -> list[sa.ColumnElement[bool]]:
    # Scheduled and not yet due: nothing of it has reached anyone.
    return [notifications.c.status == Status.PENDING, notifications.c.visible_at > now]


async def cancel(
    conn: AsyncConnection, notification_id: str, now: datetime, *, cipher: FieldCipher | None,
) -> tuple[Notification | None, bool]:
    """Cancel one notification if it is not yet due; (record, canceled). None: no such
    notification."""
    result = await conn.execute(
        notifications.update()
        .where(notifications.c.id == notification_id, *_cancelable(now))
        .values(status=Status.CANCELED).returning(*COLUMNS))
    row = result.first()
    if row is not None:
        await _skip_deliveries(conn, [notification_id], now)
        return record_of(tuple(row), cipher), True
    found = (await conn.execute(
        sa.select(*COLUMNS).where(notifications.c.id == notification_id))).first()
    return (record_of(tuple(found), cipher) if found is not None else None), False


async def cancel_by_key(
    conn: AsyncConnection, producer: str, key: str, now: datetime,
) -> list[str]:
    """Cancel every copy made by the producer's create under `key` that is not yet due;
    their ids."""
    result = await conn.execute(
        notifications.update()
        .where(notifications.c.producer == producer, notifications.c.idempotency_key == key,
               *_cancelable(now))
        .values(status=Status.CANCELED).returning(notifications.c.id))
    ids = [row.id for row in result]
    await _skip_deliveries(conn, ids, now)
    return ids


async def _skip_deliveries(conn: AsyncConnection, ids: Sequence[str], now: datetime) -> None:
    """The user-facing deliveries still waiting end `skipped`: no worker claims them."""
    if not ids:
        return
    values: dict[str, Any] = {"status": DeliveryStatus.SKIPPED, "last_error": CANCELED,
                              "updated_at": now, "lease_token": None, "locked_until": None}
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.notification_id.in_(ids),
               deliveries.c.medium.in_([Medium.IN_APP, Medium.EMAIL, Medium.PUSH]),
               deliveries.c.status == DeliveryStatus.PENDING)
        .values(**values))


async def record_click(
    conn: AsyncConnection, notification_id: str, now: datetime, *, cipher: FieldCipher | None,
) -> tuple[Notification | None, bool]:
    """`clicked_at` set on the first click; (record, first). A canceled notification is
    gone, as for its user."""
    present = [notifications.c.id == notification_id,
               notifications.c.status != Status.CANCELED]
    result = await conn.execute(
        notifications.update().where(*present, notifications.c.clicked_at.is_(None))
        .values(clicked_at=now).returning(*COLUMNS))
    row = result.first()
    if row is not None:
        return record_of(tuple(row), cipher), True
    found = (await conn.execute(sa.select(*COLUMNS).where(*present))).first()
    return (record_of(tuple(found), cipher) if found is not None else None), False
