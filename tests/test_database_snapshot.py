"""A read made of several statements sees one committed state (`Database.snapshot`).

Reading a notification and then its deliveries under READ COMMITTED could show deliveries
a settlement had just ended beside the notification's status from before it; the API's
reads of notifications go through a snapshot, so they never do."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tidings.store.database import Database

on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@on_postgresql
async def test_a_snapshot_does_not_see_a_commit_made_during_it(database_url: str) -> None:
    db = Database(database_url, pool_size=2)
    try:
        async with db.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE probe (v int)"))
            await conn.execute(sa.text("INSERT INTO probe VALUES (1)"))
        async with db.snapshot() as reader:
            first = (await reader.execute(sa.text("SELECT v FROM probe"))).scalar_one()
            async with db.begin() as writer:  # commits while the read is open
                await writer.execute(sa.text("UPDATE probe SET v = 2"))
            again = (await reader.execute(sa.text("SELECT v FROM probe"))).scalar_one()
        assert (first, again) == (1, 1)
        async with db.begin() as conn:  # the pool gave the connection back as it was
            level = (await conn.execute(sa.text("SHOW transaction_isolation"))).scalar_one()
            now = (await conn.execute(sa.text("SELECT v FROM probe"))).scalar_one()
        assert (level, now) == ("read committed", 2)
    finally:
        await db.dispose()


async def test_a_snapshot_on_sqlite_is_a_plain_transaction(database_url: str) -> None:
    db = Database(database_url, pool_size=1)
    try:
        async with db.snapshot() as conn:
            assert (await conn.execute(sa.text("SELECT 1"))).scalar_one() == 1
    finally:
        await db.dispose()
