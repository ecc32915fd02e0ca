"""SQL for idempotency keys: the first outcome of a producer's key, kept to be replayed.

A kept notification's sensitive parts are sealed as in its row (same associated data), and
its `$sensitive` entry lists them, so the kept answer leaks nothing the row hides.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.crypto.cipher import FieldCipher
from tidings.domain.errors import DuplicateKey, KeyReused
from tidings.domain.notification import Accepted, Created, CreateOutcome, Notification
from tidings.store.sealing import open_record, seal_record
from tidings.store.tables import idempotency_keys

# How an outcome's kind is kept in the `status_code` column (the numbers are those the
# column held from the start, so keys written by earlier versions still read back).
_CREATED, _ACCEPTED = 201, 202


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
    if row.fingerprint is not None and row.fingerprint != fingerprint:
        raise KeyReused("this Idempotency-Key was first used with a different request",
                        field="Idempotency-Key")
    if row.status_code == _CREATED:
        kept = Notification.from_json(row.response, producer=producer)
        return Created(open_record(cipher, kept))
    return Accepted(int(row.response["count"]), str(row.response["channel"]))


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
        kind, body = _ACCEPTED, {"count": outcome.count, "channel": outcome.channel}
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
