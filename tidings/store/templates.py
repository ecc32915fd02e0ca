"""SQL for templates: every version of every key, the latest one read by creates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.errors import DuplicateKey
from tidings.domain.template import Template
from tidings.store.reference_tables import templates

_COLUMNS = (templates.c.key, templates.c.version, templates.c.default_locale,
            templates.c.variants, templates.c.created_by, templates.c.created_at)


def _record(row: Sequence[Any]) -> Template:
    key, version, default_locale, variants, created_by, created_at = tuple(row)
    return Template(key, version, default_locale, variants, created_by, created_at)


async def insert(conn: AsyncConnection, template: Template) -> None:
    """Write one version; `DuplicateKey` if that (key, version) exists, after rolling back
    to a savepoint so the caller's transaction stays usable."""
    try:
        async with conn.begin_nested():
            await conn.execute(templates.insert().values(
                key=template.key, version=template.version,
                default_locale=template.default_locale, variants=template.variants,
                created_by=template.created_by, created_at=template.created_at,
            ))
    except sqlalchemy.exc.IntegrityError as exc:
        raise DuplicateKey(f"template {template.key} version {template.version} exists") from exc


async def latest_version(conn: AsyncConnection, key: str) -> int | None:
    value = (await conn.execute(
        sa.select(sa.func.max(templates.c.version)).where(templates.c.key == key)
    )).scalar_one_or_none()
    return int(value) if value is not None else None


async def get(conn: AsyncConnection, key: str, version: int | None = None) -> Template | None:
    """One version of a key; the latest when `version` is None."""
    query = sa.select(*_COLUMNS).where(templates.c.key == key)
    if version is None:
        query = query.order_by(templates.c.version.desc()).limit(1)
    else:
        query = query.where(templates.c.version == version)
    row = (await conn.execute(query)).first()
    return _record(row) if row is not None else None


async def latest_page(conn: AsyncConnection, limit: int, after: str | None) -> list[Template]:
    """The latest version of each key, by key; `limit + 1` records tell whether another
    page exists."""
    newest = (sa.select(templates.c.key, sa.func.max(templates.c.version).label("version"))
              .group_by(templates.c.key).subquery())
    query = sa.select(*_COLUMNS).join(
        newest, sa.and_(templates.c.key == newest.c.key, templates.c.version == newest.c.version)
    )
    if after is not None:
        query = query.where(templates.c.key > after)
    query = query.order_by(templates.c.key).limit(limit + 1)
    return [_record(row) for row in await conn.execute(query)]


async def delete(conn: AsyncConnection, key: str) -> bool:
    """Remove every version of the key."""
    result = await conn.execute(templates.delete().where(templates.c.key == key))
    return bool(result.rowcount)
