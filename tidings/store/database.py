"""The database handle: one async engine, tuned for its dialect, and transaction scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


class Database:
    """Owns the engine. Services open a transaction with `begin()` and hand the connection
    to the store functions, so one business operation is one transaction."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.engine: AsyncEngine = _create_engine(url, pool_size=pool_size, echo=echo)
        self.dialect = self.engine.dialect.name

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

    def insert(self, table: sa.Table) -> Any:
        """An INSERT that supports ON CONFLICT for this dialect (both dialects spell it the same)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)


def _create_engine(url: str, *, pool_size: int, echo: bool) -> AsyncEngine:
    if url.startswith("sqlite"):
        # One connection: SQLite has a single writer anyway, and queueing in the pool is far
        # cheaper than connections fighting over the file lock (which, for a read that turns
        # into a write, fails at once instead of waiting).
        engine = create_async_engine(
            url, echo=echo, pool_size=1, max_overflow=0, pool_timeout=30
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while a write commits; NORMAL sync is durable across process
    # crashes (only an OS crash can lose the last commits), the usual choice with WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
