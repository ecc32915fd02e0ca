"""SQL for key rotation: the stored values sealed at rest, walked in bounded batches in
primary-key order and written back sealed under the current key.

Each batch is one short transaction, so a rotation runs beside a live service and can stop
at any point; a value already under the current key is left alone, so running again
resumes where it stopped and repeats nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.crypto.cipher import FieldCipher
from tidings.store.reference_tables import idempotency_keys
from tidings.store.sealing import Content, reseal_content
from tidings.store.tables import notifications

_CREATED = 201  # idempotency answers that keep a notification (see store/idempotency.py)
_SENSITIVE = "$sensitive"


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch's work: where the next starts (None: the table is done), how many rows
    were rewritten, values resealed, and values that could not be opened."""

    after: Any
    rows: int
    rewritten: int
    unreadable: int


async def reseal_notifications(
    conn: AsyncConnection, cipher: FieldCipher, after: str | None, limit: int
) -> Batch:
    query = (
        sa.select(notifications.c.id, notifications.c.title, notifications.c.message,
                  notifications.c.data, notifications.c.sensitive)
        .where(notifications.c.sensitive.is_not(None))
        .order_by(notifications.c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(notifications.c.id > after)
    rows = (await conn.execute(query)).all()
    updates: list[dict[str, Any]] = []
    rewritten = unreadable = 0
    for row in rows:
        stored = Content(row.title, row.message, row.data or {})
        result = reseal_content(cipher, row.id, tuple(row.sensitive or ()), stored)
        unreadable += result.unreadable
        if result.rewritten:
            rewritten += result.rewritten
            updates.append({"row_id": row.id, "new_title": result.content.title,
                            "new_message": result.content.message,
                            "new_data": result.content.data})
    if updates:
        await conn.execute(
            notifications.update()
            .where(notifications.c.id == sa.bindparam("row_id"))
            .values(title=sa.bindparam("new_title"), message=sa.bindparam("new_message"),
                    data=sa.bindparam("new_data", type_=notifications.c.data.type)),
            updates,
        )
    return Batch(rows[-1].id if len(rows) == limit else None, len(updates), rewritten,
                 unreadable)


async def reseal_idempotency_answers(
    conn: AsyncConnection, cipher: FieldCipher, after: tuple[str, str] | None, limit: int
) -> Batch:
    """The same for kept answers. Which ones hold sealed parts is in their JSON, which the
    two dialects query differently, so every kept notification answer is read and the
    test is made here."""
    table = idempotency_keys
    query = (
        sa.select(table.c.producer, table.c.key, table.c.response)
        .where(table.c.status_code == _CREATED)
        .order_by(table.c.producer, table.c.key)
        .limit(limit)
    )
    if after is not None:
        query = query.where(sa.tuple_(table.c.producer, table.c.key) > sa.tuple_(*after))
    rows = (await conn.execute(query)).all()
    updates: list[dict[str, Any]] = []
    rewritten = unreadable = 0
    for row in rows:
        body = row.response
        if not isinstance(body, dict) or not body.get(_SENSITIVE):
            continue
        stored = Content(body["title"], body["message"], body.get("data") or {})
        result = reseal_content(cipher, body["id"], tuple(body[_SENSITIVE]), stored)
        unreadable += result.unreadable
        if result.rewritten:
            rewritten += result.rewritten
            fresh = {**body, "title": result.content.title, "message": result.content.message,
                     "data": result.content.data}
            updates.append({"row_producer": row.producer, "row_key": row.key,
                            "new_response": fresh})
    if updates:
        await conn.execute(
            table.update()
            .where(table.c.producer == sa.bindparam("row_producer"),
                   table.c.key == sa.bindparam("row_key"))
            .values(response=sa.bindparam("new_response", type_=table.c.response.type)),
            updates,
        )
    last = (rows[-1].producer, rows[-1].key) if len(rows) == limit else None
    return Batch(last, len(updates), rewritten, unreadable)
