"""SQL for idempotency keys: the first answer to a producer's key, kept to be replayed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.tables import idempotency_keys


async def find(conn: AsyncConnection, producer: str, key: str) -> tuple[int, Any] | None:
    result = await conn.execute(
        sa.select(idempotency_keys.c.status_code, idempotency_keys.c.response).where(
            idempotency_keys.c.producer == producer, idempotency_keys.c.key == key
        )
    )
    row = result.first()
    return (row.status_code, row.response) if row else None


async def record(
    conn: AsyncConnection, producer: str, key: str, status_code: int, response: Any,
    now: datetime,
) -> None:
    """Inserted in the creating transaction: a concurrent duplicate fails on the primary
    key and rolls its whole creation back, so a key never creates twice."""
    await conn.execute(
        idempotency_keys.insert().values(
            producer=producer, key=key, status_code=status_code, response=response,
            created_at=now,
        )
    )
