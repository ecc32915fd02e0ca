"""SQL for idempotency keys: the first outcome of a producer's key, kept to be replayed.

A kept notification's sensitive parts are sealed as in its row (same associated data), and
its `$sensitive` entry lists them, so the kept answer leaks nothing the row hides.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.crypto.cipher import FieldCipher
from tidings.domain.errors import DuplicateKey, KeyReused, ValidationFailed
from tidings.domain.model import DEFAULT_CHANNEL
from tidings.domain.notification import (
    Accepted,
    BatchItem,
    Created,
    CreateOutcome,
    Notification,
)
from tidings.store.reference_tables import idempotency_keys
from tidings.store.sealing import open_record, seal_record

# How an outcome's kind is kept in the `status_code` column (the numbers are those the
# column held from the start, so keys written by earlier versions still read back).
_CREATED, _ACCEPTED = 201, 202
# A bulk request's key keeps every item's outcome (an item that was refused keeps its
# error), so a repeat answers the whole first answer.
_BATCH = 200


SENSITIVE = "$sensitive"  # the kept answer's list of sealed parts


async def find(
    conn: AsyncConnection, producer: str, key: str, fingerprint: str,
    *, cipher: FieldCipher | None,
) -> CreateOutcome | None:
    """The outcome first answered to this key; `KeyReused` when the key was first used for
    a request with another fingerprint."""
    result = await conn.execute(
        sa.select(idempotency_keys.c.status_code, idempotency_keys.c.response,
                  idempotency_keys.c.fingerprint).where(
            idempotency_keys.c.producer == producer, idempotency_keys.c.key == key
        )
    )
    row = result.first()
    if row is None:
        return None
    if row.status_code == _BATCH or (
        row.fingerprint is not None and row.fingerprint != fingerprint
    ):
        raise KeyReused("this Idempotency-Key was first used with a different request",
                        field="Idempotency-Key")
    if row.status_code == _CREATED:
        kept = Notification.from_json(row.response, producer=producer)
        return Created(open_record(cipher, kept))
    return _accepted(row.response)


async def record(
    conn: AsyncConnection, producer: str, key: str, fingerprint: str, outcome: CreateOutcome,
    now: datetime, *, cipher: FieldCipher | None,
) -> None:
    """Inserted in the creating transaction: a concurrent duplicate fails on the primary
    key, raising `DuplicateKey`, and its whole creation rolls back, so a key never creates
    twice."""
    if isinstance(outcome, Created):
        kind, body = _CREATED, _kept(outcome.notification, cipher)
    else:
        kind, body = _ACCEPTED, outcome.body()
    try:
        await conn.execute(
            idempotency_keys.insert().values(
                producer=producer, key=key, status_code=kind, response=body,
                fingerprint=fingerprint, created_at=now,
            )
        )
    except sqlalchemy.exc.IntegrityError as exc:
        raise DuplicateKey("this idempotency key was taken concurrently") from exc


def _kept(notification: Notification, cipher: FieldCipher | None) -> dict[str, object]:
    if not notification.sensitive:
        return notification.to_json()
    if cipher is None:
        raise ValueError("sensitive parts cannot be kept without encryption keys")
    body = seal_record(cipher, notification).to_json()
    body[SENSITIVE] = list(notification.sensitive)
    return body


async def find_batch(
    conn: AsyncConnection, producer: str, key: str, fingerprint: str,
    *, cipher: FieldCipher | None,
) -> list[BatchItem] | None:
    row = (await conn.execute(
        sa.select(idempotency_keys.c.status_code, idempotency_keys.c.response,
                  idempotency_keys.c.fingerprint).where(
            idempotency_keys.c.producer == producer, idempotency_keys.c.key == key)
    )).first()
    if row is None:
        return None
    if row.status_code != _BATCH or (
        row.fingerprint is not None and row.fingerprint != fingerprint
    ):
        raise KeyReused("this Idempotency-Key was first used with a different request",
                        field="Idempotency-Key")
    items: list[BatchItem] = []
    for kept in row.response["results"]:
        if "created" in kept:
            notification = Notification.from_json(kept["created"], producer=producer)
            items.append(Created(open_record(cipher, notification)))
        elif "accepted" in kept:
            items.append(_accepted(kept["accepted"]))
        else:
            error = kept["error"]
            items.append(ValidationFailed(error["message"], field=error.get("field")))
    return items


async def record_batch(
    conn: AsyncConnection, producer: str, key: str, fingerprint: str,
    items: list[BatchItem], now: datetime, *, cipher: FieldCipher | None,
) -> None:
    kept: list[dict[str, object]] = []
    for item in items:
        if isinstance(item, Created):
            kept.append({"created": _kept(item.notification, cipher)})
        elif isinstance(item, Accepted):
            kept.append({"accepted": item.body()})
        else:
            kept.append({"error": item.body()})
    try:
        await conn.execute(idempotency_keys.insert().values(
            producer=producer, key=key, status_code=_BATCH, response={"results": kept},
            fingerprint=fingerprint, created_at=now))
    except sqlalchemy.exc.IntegrityError as exc:
        raise DuplicateKey("this idempotency key was taken concurrently") from exc


def _accepted(body: dict[str, Any]) -> Accepted:
    """The 202 answer kept for a key (`Accepted.body`)."""
    if body.get("broadcast"):
        return Accepted(1, DEFAULT_CHANNEL, broadcast_id=str(body["id"]))
    return Accepted(int(body["count"]), str(body["channel"]))
