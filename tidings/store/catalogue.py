"""SQL for the types catalogue: one row per (channel, type), read whole by the caches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.catalogue import NotificationType, TypeSpec
from tidings.domain.model import Medium
from tidings.store.reference_tables import types

_COLUMNS = (types.c.channel, types.c.type, types.c.name, types.c.description,
            types.c.required, types.c.default_media, types.c.escalation, types.c.digest,
            types.c.updated_by, types.c.updated_at)


def _record(row: Sequence[Any]) -> NotificationType:
    (channel, type_, name, description, required, media, escalation, digest,
     updated_by, updated_at) = tuple(row)
    spec = TypeSpec(
        name=dict(name), description=dict(description) if description is not None else None,
        required=bool(required),
        default_media=tuple(Medium(m) for m in media) if media else None,
        escalation=tuple(escalation) if escalation else None,
        digest_key=digest["key"] if digest else None,
        digest_window=int(digest["window_seconds"]) if digest else None,
    )
    return NotificationType(channel, type_, spec, updated_by, updated_at)


def _values(item: NotificationType) -> dict[str, Any]:
    spec = item.spec
    return {
        "name": spec.name, "description": spec.description, "required": spec.required,
        "default_media": ([m.value for m in spec.default_media]
                          if spec.default_media is not None else None),
        "escalation": list(spec.escalation) if spec.escalation is not None else None,
        "digest": ({"key": spec.digest_key, "window_seconds": spec.digest_window}
                   if spec.digest_key is not None else None),
        "updated_by": item.updated_by, "updated_at": item.updated_at,
    }


def _pair(channel: str, type_: str) -> sa.ColumnElement[bool]:
    return sa.and_(types.c.channel == channel, types.c.type == type_)


async def put(conn: AsyncConnection, item: NotificationType) -> bool:
    """Create or replace the type; True when it was created. Concurrent PUTs of one type
    meet on the row (the UPDATE waits for the other's commit on PostgreSQL); the last
    one to commit wins, as a replacement should."""
    values = _values(item)
    replace = types.update().where(_pair(item.channel, item.type)).values(**values)
    if (await conn.execute(replace)).rowcount:
        return False
    try:
        async with conn.begin_nested():
            await conn.execute(types.insert().values(channel=item.channel, type=item.type,
                                                     **values))
    except sqlalchemy.exc.IntegrityError:
        # Two first PUTs of one type at once: the other committed its row first (its
        # key is now there to update), and this one replaces it.
        await conn.execute(replace)
        return False
    return True


async def get(conn: AsyncConnection, channel: str, type_: str) -> NotificationType | None:
    row = (await conn.execute(sa.select(*_COLUMNS).where(_pair(channel, type_)))).first()
    return _record(row) if row is not None else None


async def page(conn: AsyncConnection, limit: int,
               after: tuple[str, str] | None) -> list[NotificationType]:
    """By (channel, type); `limit + 1` records tell whether another page exists."""
    query = sa.select(*_COLUMNS)
    if after is not None:
        query = query.where(sa.tuple_(types.c.channel, types.c.type) > sa.tuple_(*after))
    query = query.order_by(types.c.channel, types.c.type).limit(limit + 1)
    return [_record(row) for row in await conn.execute(query)]


async def every(conn: AsyncConnection) -> list[NotificationType]:
    """The whole catalogue (for the caches: an admin writes it by hand, it stays small)."""
    return [_record(row) for row in await conn.execute(sa.select(*_COLUMNS))]


async def delete(conn: AsyncConnection, channel: str, type_: str) -> bool:
    result = await conn.execute(types.delete().where(_pair(channel, type_)))
    return bool(result.rowcount)
