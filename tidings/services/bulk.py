"""Bulk creation (`POST /api/notifications/batch`): up to 1,000 creates answered in order,
stored in one transaction, each item judged on its own.

An invalid item is answered with its own error and never fails another; the valid ones are
written together through the creation service's group write (which, should the database
refuse the whole transaction, writes each alone so only a guilty item fails). An
`Idempotency-Key` covers the whole request: a repeat answers every item's first outcome.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from tidings.crypto.cipher import FieldCipher
from tidings.domain.errors import Forbidden, TidingsError, ValidationFailed
from tidings.domain.inputs import NotificationDraft, parse
from tidings.domain.model import Principal, utcnow
from tidings.domain.notification import BatchItem
from tidings.services.copies import CreationRequest, check_key
from tidings.services.creation import CreationService
from tidings.services.creation_writes import Written
from tidings.store import idempotency
from tidings.store.database import Connection, Database

MAX_ITEMS = 1000


class BulkCreationService:
    """Owns the per-item judgement and the whole-request idempotency of bulk creates."""

    def __init__(self, db: Database, creation: CreationService,
                 cipher: FieldCipher | None = None) -> None:
        self._db = db
        self._creation = creation
        self._cipher = cipher

    async def create_many(
        self, principal: Principal, items: Sequence[Any], idempotency_key: str | None
    ) -> list[BatchItem]:
        if not principal.may_create:
            raise Forbidden("creating notifications needs the role 'service' or 'admin'")
        check_key(idempotency_key)
        fingerprint = hashlib.sha256(
            json.dumps(list(items), sort_keys=True, default=str).encode()).hexdigest()
        if idempotency_key is not None:
            async with self._db.begin() as conn:
                found = await idempotency.find_batch(conn, principal.user_id, idempotency_key,
                                                     fingerprint, cipher=self._cipher)
            if found is not None:
                return found
        answers: list[BatchItem | None] = []
        requests: list[CreationRequest] = []
        for item in items:
            try:
                draft = parse(NotificationDraft, item)
                requests.append(await self._creation.prepare(principal, draft, None))
                answers.append(None)
            except ValidationFailed as exc:
                answers.append(exc)

        # Before anything is written: over the limit, the whole request is refused.
        await self._creation.charge(principal.user_id, requests, "items")

        async def keep(conn: Connection, written: list[Written | BaseException]) -> None:
            if idempotency_key is not None:
                await idempotency.record_batch(
                    conn, principal.user_id, idempotency_key, fingerprint,
                    _merge(answers, written), utcnow(), cipher=self._cipher)

        written = await self._creation.write_together(requests, keep) if requests else []
        if not requests:
            async with self._db.begin() as conn:
                await keep(conn, [])
        for request, result in zip(requests, written, strict=True):
            if isinstance(result, Written) and (result.stored or result.fed):
                await self._creation.announce(request, result.stored, fed=result.fed)
        return _merge(answers, written)


def _merge(answers: list[BatchItem | None],
           written: list[Written | BaseException]) -> list[BatchItem]:
    """Every item's outcome in request order: its own error, or what writing it gave."""
    results = iter(written)
    merged: list[BatchItem] = []
    for answer in answers:
        if answer is not None:
            merged.append(answer)
            continue
        result = next(results)
        if isinstance(result, Written):
            merged.append(result.outcome)
        elif isinstance(result, TidingsError):
            merged.append(ValidationFailed(result.message, field=result.field))
        else:
            # The database refused this item alone (the others are stored): say so
            # without its contents.
            merged.append(ValidationFailed("this notification could not be stored",
                                           field="body"))
    return merged
