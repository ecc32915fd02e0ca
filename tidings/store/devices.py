"""SQL for push devices: registration (which moves a known token or endpoint to its new
owner), the owner's list, and what the push workers read and write."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.device import Device, DeviceRecord, NewDevice, Platform, Registered
from tidings.store.database import upsert_into
from tidings.store.reference_tables import push_devices

LOOKUP_SLICE = 500
_COLUMNS = (push_devices.c.id, push_devices.c.user_id, push_devices.c.platform,
            push_devices.c.address, push_devices.c.p256dh, push_devices.c.auth,
            push_devices.c.created_at, push_devices.c.disabled_at)


def _record(row: Sequence[Any]) -> DeviceRecord:
    id_, user_id, platform, address, p256dh, auth, created_at, disabled_at = row
    return DeviceRecord(id_, user_id, Platform(platform), address, p256dh, auth,
                        created_at, disabled_at)


async def register(conn: AsyncConnection, device: NewDevice, now: datetime) -> Registered:
    """Insert the device, or, when its (platform, address) is known, give that row to this
    user, re-enable it and take the new keys: one statement, so two concurrent
    registrations of one address end in one row."""
    stmt = upsert_into(conn, push_devices).values(
        id=device.id, user_id=device.user_id, platform=device.platform,
        address=device.address, p256dh=device.p256dh, auth=device.auth,
        created_at=now, updated_at=now, disabled_at=None, disabled_reason=None,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["platform", "address"],
        set_={name: stmt.excluded[name] for name in (
            "user_id", "p256dh", "auth", "updated_at", "disabled_at", "disabled_reason")},
    ).returning(*_COLUMNS)
    record = _record((await conn.execute(stmt)).one())
    # The row keeps its id when it existed: a new id back means this insert made it.
    return Registered(record, created=record.id == device.id)


async def list_for_user(conn: AsyncConnection, user_id: str) -> list[DeviceRecord]:
    query = (
        sa.select(*_COLUMNS)
        .where(push_devices.c.user_id == user_id)
        .order_by(push_devices.c.created_at, push_devices.c.id)
    )
    return [_record(row) for row in await conn.execute(query)]


async def delete(conn: AsyncConnection, user_id: str, device_id: str) -> bool:
    """Delete the device if this user owns it; whether it did."""
    result = await conn.execute(
        sa.delete(push_devices).where(
            push_devices.c.id == device_id, push_devices.c.user_id == user_id
        )
    )
    return bool(result.rowcount)


# Most recently registered first: the order in which devices stay within a user's cap.
_NEWEST_FIRST = (push_devices.c.updated_at.desc(), push_devices.c.id.desc())
OVER_CAP = "more devices than MAX_DEVICES_PER_USER: a newer one was registered"


async def disable_beyond(conn: AsyncConnection, user_id: str, keep: int,
                         now: datetime) -> int:
    """Disable the user's enabled devices beyond the `keep` most recently registered (a
    device registered again counts as new); how many were disabled."""
    newest = (
        sa.select(push_devices.c.id)
        .where(push_devices.c.user_id == user_id, push_devices.c.disabled_at.is_(None))
        .order_by(*_NEWEST_FIRST)
        .limit(keep)
    )
    result = await conn.execute(
        sa.update(push_devices)
        .where(push_devices.c.user_id == user_id, push_devices.c.disabled_at.is_(None),
               push_devices.c.id.not_in(newest.scalar_subquery()))
        .values(disabled_at=now, disabled_reason=OVER_CAP, updated_at=now)
    )
    return int(result.rowcount or 0)


async def active_devices(
    conn: AsyncConnection, user_ids: Sequence[str], per_user: int
) -> dict[str, list[Device]]:
    """The enabled devices of many users at once, as push senders take them (oldest
    first): at most `per_user` each, the most recently registered (registration keeps
    users within the cap; this bounds a push even where concurrent registrations overshot
    it). Users without a device are absent from the answer."""
    found: dict[str, list[Device]] = {}
    unique = list(dict.fromkeys(user_ids))
    for start in range(0, len(unique), LOOKUP_SLICE):
        query = (
            sa.select(*_COLUMNS)
            .where(push_devices.c.user_id.in_(unique[start : start + LOOKUP_SLICE]),
                   push_devices.c.disabled_at.is_(None))
            .order_by(push_devices.c.user_id, *_NEWEST_FIRST)
        )
        for row in await conn.execute(query):
            record = _record(row)
            devices = found.setdefault(record.user_id, [])
            if len(devices) < per_user:
                devices.append(record.target())
    return {user_id: devices[::-1] for user_id, devices in found.items()}


async def disable(conn: AsyncConnection, device_id: str, reason: str, now: datetime) -> bool:
    """Stop sending to a device (its provider said it is gone); the first reason stays.
    Registering the same token or endpoint again enables it. Whether a row changed."""
    result = await conn.execute(
        sa.update(push_devices)
        .where(push_devices.c.id == device_id, push_devices.c.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason=reason, updated_at=now)
    )
    return bool(result.rowcount)
