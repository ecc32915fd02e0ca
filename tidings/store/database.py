"""The database handle: one async engine, tuned for its dialect, and transaction scopes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tidings.domain.errors import Unavailable

log = logging.getLogger(__name__)

# The transaction handle services pass through to the store functions (they never use it
# themselves): named here so that nothing above the store imports SQLAlchemy.
Connection = AsyncConnection

CHECKPOINT_INTERVAL_S = 1.0
# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out (a
# proxy or firewall may have dropped it without a word); one in steady use never is.
IDLE_PING_S = 5.0
_IDLE_SINCE = "tidings_idle_since"

UNAVAILABLE = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
    OSError,
)


def is_unavailable(exc: BaseException) -> bool:
    """An error that says the database could not be reached, not that the request was
    wrong. A connection the server closed mid-transaction (a restart, a failover,
    `pg_terminate_backend`) reaches us from asyncpg as a generic or internal driver error,
    not an OperationalError; SQLAlchemy marks it `connection_invalidated` (and drops the
    connection from the pool, so a retry gets a fresh one)."""
    if isinstance(exc, UNAVAILABLE):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


def _unavailable(exc: BaseException) -> Unavailable:
    log.warning("database unavailable: %s", exc)
    return Unavailable("the database is unavailable, try again")


class Database:
    """Owns the engine. Services open a transaction with `begin()` and hand the connection
    to the store functions, so one business operation is one transaction."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False,
                 idle_ping_s: float = IDLE_PING_S) -> None:
        self.url = url
        self.engine: AsyncEngine = _create_engine(url, pool_size=pool_size, echo=echo,
                                                  idle_ping_s=idle_ping_s)
        self.dialect = self.engine.dialect.name
        self._checkpointer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.dialect == "sqlite" and self.engine.url.database not in (None, "", ":memory:"):
            self._checkpointer = asyncio.get_running_loop().create_task(
                self._checkpoint_forever(), name="tidings-sqlite-checkpoint"
            )

    async def checkpoint(self) -> tuple[int, int, int]:
        """Copy the write-ahead log into the database file, from a connection and thread
        of its own: (busy, WAL frames, frames checkpointed)."""
        path = str(self.engine.url.database)

        def run() -> tuple[int, int, int]:
            with contextlib.closing(sqlite3.connect(path, timeout=5)) as conn:
                busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                return int(busy), int(frames), int(done)

        return await asyncio.to_thread(run)

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            try:
                await self.checkpoint()
            except sqlite3.Error as exc:  # retried next time; the WAL only grows meanwhile
                log.warning("SQLite checkpoint failed: %s", exc)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """One transaction. A database that cannot be reached (or a pool that stays
        exhausted) surfaces as `Unavailable`, which the edges answer with 503 / an `error`
        event: the caller may retry, and nothing was half-written."""
        async with self._transaction(None) as conn:
            yield conn

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """One transaction whose statements all see the same committed state, for a read
        made of several statements (a notification, then its deliveries): under
        PostgreSQL's default READ COMMITTED each statement would see its own, and a
        settlement committing in between would show ended deliveries beside the status
        from before them. REPEATABLE READ costs no round trip (it rides on BEGIN). SQLite's
        single connection never interleaves a write with the read."""
        async with self._transaction(
            "REPEATABLE READ" if self.dialect == "postgresql" else None
        ) as conn:
            yield conn

    @asynccontextmanager
    async def _transaction(self, isolation: str | None) -> AsyncIterator[AsyncConnection]:
        conn = self.engine.connect()
        try:
            await conn.start()
            if isolation is not None:
                # Reset by the pool when the connection goes back.
                await conn.execution_options(isolation_level=isolation)
        except (sa.exc.DBAPIError, *UNAVAILABLE) as exc:
            # Whatever stops a connection from opening (refused, a database that does not
            # accept connections, too many clients) is an outage, not a bad request.
            raise _unavailable(exc) from exc
        try:
            async with conn.begin():
                yield conn
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            raise _unavailable(exc) from exc
        finally:
            # Shielded as `AsyncConnection.__aexit__` does: a cancelled request still
            # returns its connection to the pool.
            await asyncio.shield(conn.close())

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        await self.engine.dispose()

def _create_engine(url: str, *, pool_size: int, echo: bool, idle_ping_s: float) -> AsyncEngine:
    if url.startswith("sqlite"):
        # One connection: SQLite has a single writer anyway, and queueing in the pool is far
        # cheaper than connections fighting over the file lock (which, for a read that turns
        # into a write, fails at once instead of waiting).
        engine = create_async_engine(
            url, echo=echo, pool_size=1, max_overflow=0, pool_timeout=30,
            hide_parameters=True,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        # Errors (and so every log of one) show the SQL without its parameters, which are
        # other producers' notification contents.
        hide_parameters=True,
    )
    _guard_checkouts(engine, idle_ping_s)
    return engine


def _guard_checkouts(engine: AsyncEngine, idle_ping_s: float) -> None:
    """Instead of `pool_pre_ping`, which costs every transaction three round trips (asyncpg
    pings inside a transaction of its own): a connection whose socket the server already
    closed (a restart, `pg_terminate_backend`) is replaced for free, and only one that sat
    idle in the pool longer than `idle_ping_s` is pinged. Raising `DisconnectionError` here
    makes the pool drop the connection and hand out a fresh one. A connection that dies
    unseen in between fails its transaction, which answers 503 like any other outage (and
    is dropped from the pool by SQLAlchemy's disconnect handling)."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    def connected(_dbapi_connection: Any, record: Any) -> None:
        record.info.pop(_IDLE_SINCE, None)  # fresh: nothing to check

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None:
            return
        if dbapi_connection.driver_connection.is_closed():
            raise sa.exc.DisconnectionError("the server closed this pooled connection")
        if time.monotonic() - idle_since < idle_ping_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The server or the path to it went away: so did the other idle connections.
            raise sa.exc.InvalidatePoolError(f"idle pooled connection is gone: {exc}") from exc

    event.listen(pool, "connect", connected)
    event.listen(pool, "checkin", checked_in)
    event.listen(pool, "checkout", checked_out)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while a write commits; NORMAL sync is durable across process
    # crashes (only an OS crash can lose the last commits), the usual choice with WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Checkpoints (which fsync) run from `Database.checkpoint`, on a connection and thread
    # of their own; left to the default, the commit that crosses 1,000 WAL pages does it,
    # holding the service's only connection for as long as the disk takes, often 100s of ms.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def upsert_into(conn: AsyncConnection, table: sa.Table) -> Any:
    """An INSERT that can take ON CONFLICT clauses, for the connection's dialect (both
    dialects spell them the same)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
