"""SQL for notifications and their per-medium deliveries. Takes and returns domain records;
the columns are known here alone.

Parts a producer marked sensitive are sealed on the way in and opened on the way out (with
the `FieldCipher` each caller passes, None when no keys are configured), so no caller ever
sees a sealed value and the database never holds those parts in plaintext."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.crypto.cipher import FieldCipher
from tidings.domain.delivery import with_unserved
from tidings.domain.model import DeliveryStatus, Medium, Status
from tidings.domain.notification import InboxFilter, NewDelivery, Notification
from tidings.store import broadcasts, driver_inserts
from tidings.store import deliveries as deliveries_store
from tidings.store.sealing import open_record, seal_record
from tidings.store.tables import broadcast_states, notifications
from tidings.store.tables import notification_deliveries as deliveries

_FIELDS = tuple(field.name for field in fields(Notification) if field.name != "deliveries")
# Selected in the record's field order (`template` and `content` included: the JSON
# columns of a notification made from a template), so a row maps onto the record by name.
_COLUMNS = tuple(notifications.c[name] for name in _FIELDS)
COLUMNS = _COLUMNS  # for the store modules that select notifications in a query of their own
FIELDS = _FIELDS  # their names, for a query of a half of the inbox (`broadcasts.Half`)


def _record(row: Row[Any], cipher: FieldCipher | None) -> Notification:
    return record_of(tuple(row), cipher)


def record_of(row: Sequence[Any], cipher: FieldCipher | None) -> Notification:
    """The record of one row of `COLUMNS` (sensitive parts opened)."""
    # By name: the record's fields after `deliveries` (template, content) are columns too.
    values = dict(zip(_FIELDS, row, strict=True))
    marked = values["sensitive"]
    values["sensitive"] = tuple(marked) if marked else ()
    values["unserved"] = tuple(values["unserved"].split(",")) if values["unserved"] else ()
    record = Notification(**values)
    return open_record(cipher, record) if marked else record


def _sealed(item: Notification, cipher: FieldCipher | None) -> Notification:
    if item.sensitive:
        if cipher is None:
            # The creation service refuses such drafts first; this is the last line.
            raise ValueError("sensitive parts cannot be stored without encryption keys")
        return seal_record(cipher, item)
    return item


# The columns of `_rows`' tuples, in their order.
_INSERTED = (
    "id", "user_id", "type", "title", "message", "channel", "priority", "status",
    "scheduled_at", "created_at", "visible_at", "delivered_at", "read_at", "data", "in_app",
    "producer", "sensitive", "template", "content", "expires_at", "url", "actions",
    "idempotency_key", "unserved",
)


def _rows(values: driver_inserts.Values, items: Sequence[Notification],
          cipher: FieldCipher | None) -> list[driver_inserts.Row]:
    """The `_INSERTED` columns of each record (sensitive parts sealed), as bound."""
    instant, as_json, json_or_null = values.instant, values.json, values.json_or_null
    rows = []
    for item in items:
        item = _sealed(item, cipher)
        rows.append((
            item.id, item.user_id, item.type, item.title, item.message, item.channel,
            item.priority, item.status, instant(item.scheduled_at), instant(item.created_at),
            instant(item.visible_at), instant(item.delivered_at), instant(item.read_at),
            as_json(item.data), item.in_app, item.producer,
            json_or_null(list(item.sensitive) or None), as_json(item.template),
            as_json(item.content), instant(item.expires_at), item.url,
            as_json(item.actions), item.idempotency_key, ",".join(item.unserved) or None,
        ))
    return rows


async def with_deliveries(
    conn: AsyncConnection, items: Sequence[Notification]
) -> list[Notification]:
    """The same records with their deliveries attached (one query for all)."""
    if not items:
        return []
    states = await deliveries_store.states_of(conn, [item.id for item in items])
    return [replace(item, deliveries=with_unserved(states.get(item.id, ()), item.unserved,
                                                   item.created_at))
            for item in items]


def _select() -> sa.Select[Any]:
    return sa.select(*_COLUMNS)


async def insert_many(
    conn: AsyncConnection, items: Sequence[Notification], new_deliveries: Sequence[NewDelivery],
    *, cipher: FieldCipher | None,
) -> None:
    """Write the records (their sensitive parts sealed) and their deliveries."""
    values = driver_inserts.Values(conn)
    await driver_inserts.insert_rows(conn, "notifications", _INSERTED,
                                     _rows(values, items, cipher))
    await driver_inserts.insert_rows(conn, "notification_deliveries",
                                     driver_inserts.DELIVERY_COLUMNS,
                                     driver_inserts.delivery_rows(values, new_deliveries))


def _owned(user_id: str, notification_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(notifications.c.id == notification_id, notifications.c.user_id == user_id)


def _visible(now: datetime, cols: Any = notifications.c) -> sa.ColumnElement[bool]:
    # A canceled notification is gone for its user, as a deleted one is.
    return sa.and_(cols.visible_at <= now, cols.status != Status.CANCELED)


def live(now: datetime | sa.ColumnElement[Any], cols: Any = notifications.c
         ) -> sa.ColumnElement[bool]:
    """Neither canceled nor expired at `now`: what lists, counts, replay and the queue
    still carry (`now` may be a column, as in replay's asks; `cols` the columns of a half
    of the inbox, `broadcasts.Half.cols`)."""
    return sa.and_(cols.status != Status.CANCELED,
                   sa.or_(cols.expires_at.is_(None), cols.expires_at > now))


async def get_owned(
    conn: AsyncConnection, user_id: str, notification_id: str, now: datetime,
    *, cipher: FieldCipher | None,
) -> Notification | None:
    """One of the user's notifications, their own or a broadcast (with their state)."""
    for half in broadcasts.halves(user_id):
        query = (sa.select(*half.selected(_FIELDS)).select_from(half.source)
                 .where(*half.where, half.cols.id == notification_id, _visible(now, half.cols)))
        row = (await conn.execute(query)).first()
        if row is not None:
            return _record(row, cipher)
    return None


async def get_many(
    conn: AsyncConnection, ids: Sequence[str], *, cipher: FieldCipher | None
) -> list[Notification]:
    if not ids:
        return []
    result = await conn.execute(_select().where(notifications.c.id.in_(ids)))
    return [_record(row, cipher) for row in result]


def _filtered(cols: Any, now: datetime, filters: InboxFilter) -> list[sa.ColumnElement[bool]]:
    clauses = [_visible(now, cols), live(now, cols)]
    clauses.append(cols.archived_at.is_not(None) if filters.archived
                   else cols.archived_at.is_(None))
    if filters.status:
        clauses.append(cols.status == filters.status)
    if filters.unread:
        clauses.append(cols.status != Status.READ)
    if filters.channel:
        clauses.append(cols.channel == filters.channel)
    if filters.type:
        clauses.append(cols.type == filters.type)
    return clauses


async def list_page(
    conn: AsyncConnection,
    user_id: str,
    now: datetime,
    filters: InboxFilter,
    limit: int,
    before: tuple[datetime, str] | None,
    *,
    cipher: FieldCipher | None,
) -> list[Notification]:
    """Newest first, keyset-paginated on (visible_at, id); `limit + 1` records tell whether
    another page exists. Each half of the inbox (own rows, broadcasts) is read by its own
    index to `limit + 1` rows, and the two merged."""
    found: list[Notification] = []
    for half in broadcasts.halves(user_id):
        cols = half.cols
        clauses = [*half.where, *_filtered(cols, now, filters)]
        if before is not None:
            clauses.append(sa.tuple_(cols.visible_at, cols.id) < sa.tuple_(*before))
        query = (
            sa.select(*half.selected(_FIELDS)).select_from(half.source)
            .where(*clauses)
            .order_by(cols.visible_at.desc(), cols.id.desc())
            .limit(limit + 1)
        )
        found += [_record(row, cipher) for row in await conn.execute(query)]
    found.sort(key=lambda item: item.position, reverse=True)
    return found[:limit + 1]


async def count_unread(
    conn: AsyncConnection, user_id: str, now: datetime, filters: InboxFilter
) -> tuple[int, int]:
    """(unread, unseen) among the user's listed notifications of the filter's channel,
    type and archived side (both halves of the inbox)."""
    scope = InboxFilter(channel=filters.channel, type=filters.type, archived=filters.archived)
    unread = unseen = 0
    for half in broadcasts.halves(user_id):
        cols = half.cols
        query = sa.select(
            sa.func.coalesce(sa.func.sum(sa.case((cols.status != Status.READ, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((cols.seen_at.is_(None), 1), else_=0)), 0),
        ).select_from(half.source).where(*half.where, *_filtered(cols, now, scope))
        row = (await conn.execute(query)).one()
        unread, unseen = unread + int(row[0]), unseen + int(row[1])
    return unread, unseen


def _status_values(status: Status, now: datetime, delivered_at: Any
                   ) -> tuple[list[Status], dict[str, Any]]:
    """The states a status change may leave, and what it sets. `delivered` never
    overrides `read`; both set their timestamp once."""
    if status is Status.DELIVERED:
        return [Status.PENDING, Status.FAILED], {"status": status, "delivered_at": now}
    return [Status.PENDING, Status.FAILED, Status.DELIVERED], {
        "status": status, "read_at": now,
        "delivered_at": sa.func.coalesce(delivered_at, now)}


async def set_status(
    conn: AsyncConnection,
    user_id: str,
    notification_id: str,
    now: datetime,
    status: Status,
    *,
    cipher: FieldCipher | None,
) -> tuple[Notification | None, bool]:
    """Move a notification to `delivered` or `read`; returns (record, changed). The
    conditional UPDATE makes concurrent acks from several tabs race-free; a broadcast's
    change is the user's own state of it."""
    allowed, values = _status_values(status, now, notifications.c.delivered_at)
    result = await conn.execute(
        notifications.update()
        .where(_owned(user_id, notification_id), _visible(now), notifications.c.status.in_(allowed))
        .values(**values)
        .returning(*_COLUMNS)
    )
    row = result.first()
    if row is None:
        allowed, values = _status_values(status, now, broadcast_states.c.delivered_at)
        changed = await broadcasts.change(conn, user_id, now, [notification_id], values,
                                          broadcast_states.c.status.in_(allowed),
                                          expired_too=True)
        found = await get_owned(conn, user_id, notification_id, now, cipher=cipher)
        return found, bool(changed) and found is not None
    await conn.execute(
        deliveries.update()
        .where(
            deliveries.c.notification_id == notification_id,
            deliveries.c.medium == Medium.IN_APP,
        )
        .values(status=DeliveryStatus.DELIVERED, updated_at=now)
    )
    return _record(row, cipher), True


async def delete_owned(
    conn: AsyncConnection, user_id: str, notification_id: str, now: datetime
) -> bool:
    """The user's own notification goes; a broadcast only leaves the user's inbox."""
    # Deliveries go first rather than relying on ON DELETE CASCADE, which SQLite only
    # honours with its foreign_keys pragma on.
    owned = sa.select(notifications.c.id).where(_owned(user_id, notification_id), _visible(now))
    await conn.execute(deliveries.delete().where(deliveries.c.notification_id.in_(owned)))
    result = await conn.execute(
        notifications.delete().where(_owned(user_id, notification_id), _visible(now))
    )
    if result.rowcount:
        return True
    return bool(await broadcasts.change(conn, user_id, now, [notification_id],
                                        {"deleted_at": now}, expired_too=True))
