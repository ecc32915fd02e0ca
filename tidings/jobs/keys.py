"""`tidings keys`: make a new encryption key, and rotate what is sealed at rest onto the
current key.

Rotation, in order (each step deployed everywhere before the next):
1. add the new key to ENCRYPTION_KEYS *after* the current one: every node can read it;
2. move it first: every node now writes with it;
3. run `tidings keys rotate`: every value sealed under an older key is sealed again;
4. remove the old key.
Reading a value needs its key, so a key removed before step 3 has finished leaves its
values unreadable (shown as "[undecryptable]").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.crypto.cipher import FieldCipher
from tidings.store import rotation
from tidings.store.database import Database

DEFAULT_BATCH = 500


@dataclass(frozen=True, slots=True)
class RotationReport:
    key_id: str
    rows: int  # notifications and kept answers rewritten
    rewritten: int  # values sealed again under the current key
    unreadable: int  # values that could not be opened, left as they were


Step = Callable[[AsyncConnection, FieldCipher, Any, int], Awaitable[rotation.Batch]]


async def rotate(db: Database, cipher: FieldCipher,
                 batch_size: int = DEFAULT_BATCH) -> RotationReport:
    """Seal every stored sensitive value again under the current key, one batch per
    transaction. Idempotent; safe beside running services (the sealed columns are written
    by nothing else after creation)."""
    rows = rewritten = unreadable = 0
    steps: tuple[Step, ...] = (rotation.reseal_notifications,
                               rotation.reseal_idempotency_answers)
    for step in steps:
        after: Any = None
        while True:
            async with db.begin() as conn:
                batch = await step(conn, cipher, after, batch_size)
            rows += batch.rows
            rewritten += batch.rewritten
            unreadable += batch.unreadable
            if batch.after is None:
                break
            after = batch.after
    return RotationReport(cipher.current_key_id, rows, rewritten, unreadable)
