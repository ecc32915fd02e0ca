"""The create path's inserts at the driver store exactly what SQLAlchemy's Core INSERT
stored (every column, read back raw from the database), and fail the same way: the same
exception classes, the same outage detection."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import PG_DSN
from tidings.crypto import cipher as cipher_module
from tidings.crypto.cipher import FieldCipher
from tidings.crypto.keyring import generate_entry, parse_keys
from tidings.domain.ids import uuid7
from tidings.domain.model import DeliveryStatus, Medium
from tidings.domain.notification import NewDelivery, Notification
from tidings.store import driver_inserts
from tidings.store import notifications as store
from tidings.store.database import Database, is_unavailable
from tidings.store.sealing import seal_record
from tidings.store.tables import notification_deliveries, notifications

pytestmark = pytest.mark.both_databases

FIELDS = [f.name for f in fields(Notification) if f.name != "deliveries"]
DELIVERY_COLUMNS = [c.name for c in notification_deliveries.c if c.name != "id"]
NOW = datetime(2025, 3, 4, 5, 6, 7, 89, tzinfo=UTC)
EAST = timezone(timedelta(hours=5, minutes=30))
HOSTILE = "nul\x00 lone\ud800 surrogate é " + "long " * 300

Insert = Callable[[AsyncConnection, Sequence[Notification], Sequence[NewDelivery]],
                  Awaitable[None]]


async def insert_with_core(conn: AsyncConnection, items: Sequence[Notification],
                           new_deliveries: Sequence[NewDelivery], cipher: FieldCipher) -> None:
    """The path as it was: SQLAlchemy Core's INSERT with the column types' processing."""
    rows = []
    for item in items:
        item = seal_record(cipher, item)
        row = {name: getattr(item, name) for name in FIELDS}
        row["sensitive"] = list(item.sensitive) or None
        row["unserved"] = ",".join(item.unserved) or None
        rows.append(row)
    await conn.execute(notifications.insert(), rows)
    await conn.execute(notification_deliveries.insert(), [
        {"notification_id": d.notification_id, "user_id": d.user_id, "medium": d.medium,
         "status": d.status, "attempts": d.attempts, "next_attempt_at": d.due_at,
         "last_error": d.last_error, "created_at": d.created_at, "updated_at": d.created_at,
         "digest_id": d.digest_id}
        for d in new_deliveries
    ])


def note(**changes: Any) -> Notification:
    base = Notification(
        id=uuid7(), user_id="ann", type="order.shipped",
        title="Shipped \u2018today\u2019 \U0001f69a", message='It "left" \\ the depot',
        channel="orders", priority="high",
        status="pending", scheduled_at=None, created_at=NOW, visible_at=NOW,
        delivered_at=None, read_at=None,
        data={"order": 12345678901234567890, "ratio": 0.1, "ok": True, "none": None,
              "nested": {"list": [1, "two", {"three": 3.0}]}, "ünï": "\u2028\t\n"},
        in_app=True, producer="shop")
    return replace(base, **changes)


def records() -> tuple[list[Notification], list[NewDelivery]]:
    items = [
        note(),
        note(sensitive=("title", "message", "data.order", "data.nested")),
        note(sensitive=("data",), data={"secret": "s"}),
        note(in_app=False, data={}, status="read", scheduled_at=NOW + timedelta(hours=1),
             visible_at=(NOW + timedelta(hours=1)).astimezone(EAST),
             delivered_at=NOW.replace(microsecond=0), read_at=NOW.astimezone(EAST)),
        note(unserved=("chat", "email", "sms")),
        note(template={"key": "welcome", "version": 3, "locale": "de-CH"},
             content={"subject": "Grüße", "html": "<b>hi</b>", "push_body": "x"}),
    ]
    deliveries = []
    statuses = list(DeliveryStatus)
    for n, item in enumerate(items):
        for m, medium in enumerate(Medium):
            status = statuses[(n * 3 + m) % len(statuses)]
            deliveries.append(NewDelivery(
                item.id, item.user_id, medium, status, attempts=n,
                due_at=(NOW + timedelta(minutes=m)).astimezone(EAST), created_at=NOW,
                last_error=HOSTILE if status in ("failed", "dead") else None,
                digest_id=uuid7() if medium is Medium.EMAIL else None))
    return items, deliveries


async def stored(conn: AsyncConnection, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """The rows as the database holds them: SQLite's `quote()` of each value (its storage
    class and exact bytes), PostgreSQL's text output of the row."""
    rows = []
    for table, key, columns in (("notifications", "id", FIELDS),
                                ("notification_deliveries", "notification_id",
                                 DELIVERY_COLUMNS)):
        if conn.dialect.name == "sqlite":
            select = ", ".join(f"quote({c})" for c in columns)
            marks = ", ".join("?" for _ in ids)
        else:
            select = f"ROW({', '.join(columns)})::text"
            marks = ", ".join(f"${n}" for n in range(1, len(ids) + 1))
        result = await conn.exec_driver_sql(
            f"SELECT {select} FROM {table} WHERE {key} IN ({marks}) "
            f"ORDER BY {', '.join(columns)}", tuple(ids))
        rows.extend(tuple(row) for row in result)
    return rows


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def cipher(monkeypatch: pytest.MonkeyPatch) -> FieldCipher:
    """A cipher whose nonces repeat, so that both ways seal to the same text."""
    monkeypatch.setattr(cipher_module, "os", types.SimpleNamespace(urandom=bytes))
    keyring = parse_keys(generate_entry("k1"), "ENCRYPTION_KEYS")
    assert keyring is not None
    return FieldCipher(keyring)


def both_ways(cipher: FieldCipher) -> list[Insert]:
    async def core(conn: AsyncConnection, items: Sequence[Notification],
                   deliveries: Sequence[NewDelivery]) -> None:
        await insert_with_core(conn, items, deliveries, cipher)

    async def driver(conn: AsyncConnection, items: Sequence[Notification],
                     deliveries: Sequence[NewDelivery]) -> None:
        await store.insert_many(conn, items, deliveries, cipher=cipher)

    return [core, driver]


async def outcome(db: Database, insert: Insert, items: Sequence[Notification],
                  deliveries: Sequence[NewDelivery],
                  before: Callable[[AsyncConnection], Awaitable[None]] | None = None) -> Any:
    """What one way of inserting leaves: the rows stored, or how it failed. Rolled back."""
    async with db.engine.connect() as conn:
        transaction = await conn.begin()
        try:
            if before is not None:
                await before(conn)
            await insert(conn, items, deliveries)
            return await stored(conn, [item.id for item in items])
        except Exception as exc:  # what the callers would see
            orig = getattr(exc, "orig", None)
            return ("failed", type(exc), type(orig), is_unavailable(exc),
                    getattr(exc, "connection_invalidated", None))
        finally:
            if transaction.is_active:
                await transaction.rollback()


@pytest.mark.parametrize("copy_from", [1, 10_000], ids=["copy", "executemany"])
async def test_the_rows_stored_are_those_sqlalchemy_stored(
    db: Database, cipher: FieldCipher, copy_from: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_inserts, "COPY_FROM", copy_from)
    items, deliveries = records()
    core, driver = both_ways(cipher)
    expected = await outcome(db, core, items, deliveries)
    assert len(expected) == len(items) + len(deliveries)
    assert await outcome(db, driver, items, deliveries) == expected
    # Committed and read back through the store: the records as they went in.
    async with db.begin() as conn:
        await driver(conn, items, deliveries)
    async with db.begin() as conn:
        back = await store.get_many(conn, [item.id for item in items], cipher=cipher)
    assert {item.id: item for item in back} == {
        item.id: replace(item, data=item.data or {}) for item in items}


@pytest.mark.parametrize("copy_from", [1, 10_000], ids=["copy", "executemany"])
@pytest.mark.parametrize("case", ["duplicate", "nul", "surrogate", "gone"])
async def test_a_failure_is_raised_as_sqlalchemy_raised_it(
    db: Database, cipher: FieldCipher, case: str, copy_from: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(driver_inserts, "COPY_FROM", copy_from)
    items, deliveries = records()
    before: Callable[[AsyncConnection], Awaitable[None]] | None = None
    if case == "duplicate":
        async with db.begin() as conn:
            await store.insert_many(conn, items[:1], [], cipher=cipher)
    elif case in ("nul", "surrogate"):
        items[2] = replace(items[2], message="a\x00b" if case == "nul" else "a\udc80b")
    elif db.dialect == "postgresql":  # the server ends the connection mid-transaction
        async def before(conn: AsyncConnection) -> None:
            pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
            admin = await asyncpg.connect(PG_DSN)
            try:
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
            finally:
                await admin.close()
    else:
        pytest.skip("SQLite's connection is a file")
    results = [await outcome(db, way, items, deliveries, before) for way in both_ways(cipher)]
    if case == "gone":
        # Which error a dead connection gives depends on the driver call that meets it
        # first; what the callers go by is that it is an outage and the connection dropped.
        for result in results:
            assert result[0] == "failed" and issubclass(result[1], sa.exc.DBAPIError)
        assert results[0][3:] == results[1][3:] == (True, True)
        return
    assert results[0] == results[1]
    if case == "duplicate" or db.dialect == "postgresql":
        assert results[0][0] == "failed"


@pytest.mark.parametrize("copy_from", [1, 10_000], ids=["copy", "executemany"])
async def test_the_first_statement_of_a_transaction_rolls_back_with_it(
    db: Database, cipher: FieldCipher, copy_from: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write straight to the driver before SQLAlchemy's adapter opened its transaction
    would have committed on its own."""
    monkeypatch.setattr(driver_inserts, "COPY_FROM", copy_from)
    items, deliveries = records()
    async with db.engine.connect() as conn:
        transaction = await conn.begin()
        await store.insert_many(conn, items, deliveries, cipher=cipher)
        await transaction.rollback()
    async with db.begin() as conn:
        assert await stored(conn, [item.id for item in items]) == []
