"""PostgreSQL connections leave the pool without a ping while the pool is busy, and a
connection that died while it sat in the pool is replaced before a transaction gets it.

Pings are counted at the dialect's `do_ping`, which the pool's checks go through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from tests.conftest import PG_DSN
from tidings.store.database import Database

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

BACKEND = sa.text("SELECT pg_backend_pid()")


class Pings:
    """Counts the pings the pool sends; `fail` makes the next ones fail as a connection a
    proxy dropped would (the ping errors out)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        self.fail = 0
        self._dialect = db.engine.sync_engine.dialect
        self._real = self._dialect.do_ping

    def __call__(self, dbapi_connection: Any) -> bool:
        self.count += 1
        if self.fail:
            self.fail -= 1
            raise OSError("ping timed out")
        return bool(self._real(dbapi_connection))

    def install(self) -> None:
        self._dialect.do_ping = self  # type: ignore[method-assign]

    def remove(self) -> None:
        del self._dialect.do_ping


@contextmanager
def _counted(db: Database) -> Iterator[Pings]:
    pings = Pings(db)
    pings.install()
    try:
        yield pings
    finally:
        pings.remove()


async def _backend(db: Database) -> int:
    async with db.begin() as conn:
        return int((await conn.execute(BACKEND)).scalar_one())


async def _terminate(pid: int) -> None:
    """Kills the session from another connection and waits until it is gone (the driver
    then sees its socket closed)."""
    admin = await asyncpg.connect(PG_DSN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        deadline = time.monotonic() + 10
        while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                                   pid):
            assert time.monotonic() < deadline, "the backend did not exit"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)  # the close reaches our end of the socket
    finally:
        await admin.close()


async def test_a_busy_pool_does_not_ping(database_url: str) -> None:
    db = Database(database_url, pool_size=2)
    try:
        with _counted(db) as pings:
            pids = {await _backend(db) for _ in range(30)}
            assert pings.count == 0
        assert len(pids) == 1  # the same pooled connection every time
    finally:
        await db.dispose()


async def test_a_connection_killed_while_idle_does_not_fail_the_next_request(
    database_url: str,
) -> None:
    db = Database(database_url, pool_size=1)
    try:
        with _counted(db) as pings:
            first = await _backend(db)
            await _terminate(first)
            second = await _backend(db)  # no error: the pool replaced the dead connection
            assert second != first
            assert pings.count == 0  # the driver knew: no round trip spent finding out
    finally:
        await db.dispose()


async def test_an_idle_connection_is_pinged_and_replaced_if_the_ping_fails(
    database_url: str,
) -> None:
    db = Database(database_url, pool_size=1, idle_ping_s=0.0)
    try:
        with _counted(db) as pings:
            first = await _backend(db)
            assert await _backend(db) == first and pings.count == 1  # pinged, kept
            pings.fail = 1  # as if a proxy had dropped it while it sat in the pool
            replaced = await _backend(db)
            assert replaced != first and pings.count == 2
    finally:
        await db.dispose()
