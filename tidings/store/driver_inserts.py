"""The create path's INSERTs of notifications and their deliveries, at the driver.

SQLAlchemy's executemany runs every value of every row through its bind processing (the
column types' `process_bind_param`, JSON serialization, dict-to-tuple); for the group
commit's batches that was most of the write's CPU. Here the rows are plain tuples, each
value already in the form the column types of `columns.py` give it (so the rows stored are
the same, byte for byte), timestamps formatted once per batch, and each table takes one
prepared statement: asyncpg's `executemany`, or `COPY` for a large batch, on PostgreSQL;
sqlite3's `executemany` on SQLite. Both run on the connection of the caller's transaction,
and a driver's error reaches the caller as SQLAlchemy would have raised it (`_raise_as_sqlalchemy`),
so outages still read as outages and a unique violation as an IntegrityError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.notification import NewDelivery
from tidings.domain.text import storable
from tidings.store.columns import OUTSIDE_TEXT_LIMIT

# From this many rows a table's batch goes by COPY on PostgreSQL. Measured against the
# pipelined INSERTs: the server's time is lower from a few rows on (-20% at 16, -25% at
# 200), our CPU some 5-10% higher below ~30 rows and lower above (-15% at 200).
COPY_FROM = 16

DELIVERY_COLUMNS = (
    "notification_id", "user_id", "medium", "status", "attempts", "next_attempt_at",
    "last_error", "created_at", "updated_at", "digest_id", "trace_parent", "rank",
    "step",
)

Row = tuple[Any, ...]


class Values:
    """Turns values into what the column types bind for one dialect (`UTCDateTime`,
    `JSONData`, `OutsideText`), memoizing timestamps: a batch's rows share a few instants."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.postgresql = conn.dialect.name == "postgresql"
        # SQLAlchemy's JSON types serialize with the engine's serializer, json.dumps unless
        # one was configured.
        self.dumps: Callable[[Any], str] = (
            getattr(conn.dialect, "_json_serializer", None) or json.dumps
        )
        self._instants: dict[datetime, Any] = {}

    def instant(self, value: datetime | None) -> Any:
        if value is None:
            return None
        bound = self._instants.get(value)
        if bound is None:
            utc = value if value.tzinfo is UTC else value.astimezone(UTC)
            # SQLite keeps `YYYY-MM-DD HH:MM:SS.ffffff` text (see `UTCDateTime`).
            bound = utc if self.postgresql else utc.replace(tzinfo=None).isoformat(
                " ", "microseconds")
            self._instants[value] = bound
        return bound

    def json(self, value: Any) -> str:
        """`JSONData`: None is stored as JSON null, not SQL NULL."""
        return self.dumps(value)

    def json_or_null(self, value: Any) -> str | None:
        """A JSON column with `none_as_null`."""
        return None if value is None else self.dumps(value)


def delivery_rows(values: Values, new_deliveries: Sequence[NewDelivery]) -> list[Row]:
    """The `DELIVERY_COLUMNS` of each new delivery."""
    instant = values.instant
    return [
        (
            d.notification_id, d.user_id, d.medium, d.status, d.attempts, instant(d.due_at),
            None if d.last_error is None else storable(d.last_error, OUTSIDE_TEXT_LIMIT),
            instant(d.created_at), instant(d.created_at), d.digest_id, d.trace, d.rank,
            d.step,
        )
        for d in new_deliveries
    ]


def _insert_sql(table: str, columns: Sequence[str], postgresql: bool) -> str:
    marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1)) if postgresql else (
        ", ".join("?" for _ in columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


async def insert_rows(conn: AsyncConnection, table: str, columns: Sequence[str],
                      rows: Sequence[Row]) -> None:
    """Write `rows` (tuples of `columns`, as `Values` makes them) into `table`, in the
    transaction of `conn`."""
    if not rows:
        return
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    postgresql = conn.dialect.name == "postgresql"
    statement = _insert_sql(table, columns, postgresql)
    if postgresql and not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens its transaction with the first statement run
        # through it; a write straight to the driver before that would commit on its own.
        await conn.exec_driver_sql("SELECT 1")
    copy = postgresql and len(rows) >= COPY_FROM
    if copy:
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT binary)"
    try:
        if copy:
            await _copy(driver, table, columns, rows)
        else:
            # sqlite3 opens the transaction itself before an INSERT, as for SQLAlchemy's.
            await driver.executemany(statement, rows)
    except Exception as error:
        await _raise_as_sqlalchemy(conn, raw.dbapi_connection, statement, error)


async def _copy(driver: asyncpg.Connection, table: str, columns: Sequence[str],
                rows: Sequence[Row]) -> None:
    try:
        await driver.copy_records_to_table(table, records=rows, columns=list(columns))
    except (asyncpg.PostgresError, asyncpg.InterfaceError):
        raise
    except (TypeError, ValueError, OverflowError) as error:  # UnicodeEncodeError among them
        # A value the driver cannot encode (a lone surrogate): its executemany reports
        # that as a DataError, and so does this, for the same error above.
        raise asyncpg.DataError(f"invalid input for COPY into {table}: {error}") from error


async def _raise_as_sqlalchemy(conn: AsyncConnection, adapted: Any, statement: str,
                               error: Exception) -> NoReturn:
    """Raise `error` as SQLAlchemy raises a driver's error in `execute`: translated to the
    DBAPI's class by the dialect's adapter, wrapped in `sqlalchemy.exc` (IntegrityError,
    OperationalError, ...), and the connection invalidated when it is gone, so that
    `database.is_unavailable` and the callers' handlers see what they always saw. Errors
    that are no database's (a value the driver cannot encode) go through as they are, as
    with SQLAlchemy."""
    dialect = conn.dialect
    try:
        adapted._handle_exception(error)
    except Exception as translated:  # it always raises
        dbapi_error = translated
    base = dialect.loaded_dbapi.Error
    if not isinstance(dbapi_error, base):
        raise dbapi_error
    gone = bool(dialect.is_disconnect(dbapi_error, adapted, None))
    wrapped = sa.exc.DBAPIError.instance(
        statement, None, dbapi_error, base, hide_parameters=True,
        connection_invalidated=gone, dialect=dialect, ismulti=True,
    )
    if gone:
        await conn.invalidate(wrapped)
    raise wrapped from dbapi_error
