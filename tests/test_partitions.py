"""Monthly partitions on PostgreSQL (created ahead, rows in their month, pruning, the
in-place upgrade) and retention on both dialects."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from tests.conftest import PG_DSN, SECRET, _pg_available, _pg_url
from tidings.cli import main
from tidings.domain.model import utcnow
from tidings.jobs import maintenance
from tidings.jobs.maintenance import Maintenance
from tidings.jobs.migrate import downgrade, upgrade
from tidings.store import notifications as notification_store
from tidings.store import partitions as store
from tidings.store.database import Database
from tidings.store.partitions import id_prefix, month_start, next_month
from tidings.store.reference_tables import idempotency_keys
from tidings.store.tables import delivery_attempts, notification_deliveries, notifications

pytestmark = pytest.mark.both_databases


def id_at(moment: datetime) -> str:
    """A UUIDv7 made at `moment`."""
    return f"{id_prefix(moment)}-7{uuid.uuid4().hex[:3]}-8{uuid.uuid4().hex[:15]}"


def months_after(start: datetime, count: int) -> datetime:
    for _ in range(count):
        start = next_month(start)
    return start


def note_row(note_id: str, at: datetime) -> dict[str, Any]:
    return {"id": note_id, "user_id": "ann", "type": "t", "title": "T", "message": "M",
            "channel": "general", "priority": "normal", "status": "pending",
            "scheduled_at": None, "created_at": at, "visible_at": at, "delivered_at": None,
            "read_at": None, "data": None, "in_app": True, "producer": "svc"}


async def add_note(db: Database, at: datetime) -> str:
    """A notification made at `at`, with an email delivery and one attempt of it."""
    note_id = id_at(at)
    async with db.begin() as conn:
        await conn.execute(notifications.insert(), [note_row(note_id, at)])
        delivery_id = (await conn.execute(notification_deliveries.insert().values(
            notification_id=note_id, user_id="ann", medium="email", status="sent",
            attempts=1, next_attempt_at=at, created_at=at, updated_at=at,
        ).returning(notification_deliveries.c.id))).scalar_one()
        await conn.execute(delivery_attempts.insert().values(
            delivery_id=delivery_id, notification_id=note_id, at=at, outcome="sent"))
    return note_id


async def counts(db: Database, note_id: str) -> tuple[int, int, int]:
    async with db.begin() as conn:
        found = []
        for table, column in ((notifications, notifications.c.id),
                              (notification_deliveries, notification_deliveries.c.notification_id),
                              (delivery_attempts, delivery_attempts.c.notification_id)):
            found.append((await conn.execute(
                sa.select(sa.func.count()).select_from(table).where(column == note_id)
            )).scalar_one())
    return found[0], found[1], found[2]


async def partition_of(db: Database, table: str, column: str, value: str) -> str:
    async with db.begin() as conn:
        return str((await conn.execute(sa.text(
            f"SELECT tableoid::regclass::text FROM {table} WHERE {column} = :v"), {"v": value}
        )).scalar_one())


async def relations(db: Database) -> set[str]:
    async with db.begin() as conn:
        return {row[0] for row in await conn.execute(sa.text(
            "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p')"))}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=2)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def pg(db: Database) -> Database:
    if db.dialect != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    return db


async def test_partitions_are_created_ahead_and_ensure_is_idempotent(pg: Database) -> None:
    now = utcnow()
    months = [months_after(month_start(now), n) for n in range(4)]
    names = await relations(pg)
    for table in store.TABLES:
        assert {f"{table}_p{m:%Y%m}" for m in months} <= names
        assert {f"{table}_default", f"{table}_legacy"} <= names
    assert await maintenance.ensure_partitions(pg, now, 3) == []
    later = months_after(month_start(now), 6)
    created = await maintenance.ensure_partitions(pg, now, 6)
    assert sorted(created) == sorted(f"{table}_p{m:%Y%m}" for table in store.TABLES
                                     for m in (months_after(month_start(now), 4),
                                               months_after(month_start(now), 5), later))
    assert await maintenance.ensure_partitions(pg, now, 6) == []


async def test_a_notification_and_its_rows_land_in_their_months_partition(
    pg: Database,
) -> None:
    now = utcnow()
    soon = months_after(month_start(now), 2) + timedelta(days=3)
    for at in (now, soon):
        note_id = await add_note(pg, at)
        suffix = f"_p{at:%Y%m}"
        assert await partition_of(pg, "notifications", "id", note_id) == "notifications" + suffix
        assert await partition_of(pg, "notification_deliveries", "notification_id",
                                  note_id) == "notification_deliveries" + suffix
        assert await partition_of(pg, "delivery_attempts", "notification_id",
                                  note_id) == "delivery_attempts" + suffix
    beyond = await add_note(pg, months_after(month_start(now), 30))
    assert await partition_of(pg, "notifications", "id", beyond) == "notifications_default"
    async with pg.begin() as conn:
        [found] = await notification_store.get_many(conn, [beyond], cipher=None)
    assert found.id == beyond


def scanned(plan: Any) -> set[str]:
    """The relations a JSON plan reads."""
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add(plan["Relation Name"])
        for value in plan.values():
            found |= scanned(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= scanned(value)
    return found


async def test_a_query_by_id_reads_one_partition(pg: Database) -> None:
    note_id = await add_note(pg, utcnow())
    month = f"_p{utcnow():%Y%m}"
    async with pg.begin() as conn:
        query = notification_store._select().where(notifications.c.id == note_id)
        compiled = str(query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True}))
        plan = (await conn.execute(sa.text(f"EXPLAIN (FORMAT JSON) {compiled}"))).scalar_one()
        assert scanned(json.loads(plan) if isinstance(plan, str) else plan) == {
            "notifications" + month}
        plan = (await conn.execute(sa.text(
            "EXPLAIN (FORMAT JSON) SELECT * FROM notification_deliveries"
            " WHERE notification_id = :v"), {"v": note_id})).scalar_one()
        assert scanned(json.loads(plan) if isinstance(plan, str) else plan) == {
            "notification_deliveries" + month}
        # Without the key every partition is read: the pruning above is the key's doing.
        plan = (await conn.execute(sa.text(
            "EXPLAIN (FORMAT JSON) SELECT * FROM notifications WHERE user_id = 'ann'"
        ))).scalar_one()
        assert len(scanned(json.loads(plan) if isinstance(plan, str) else plan)) > 2


async def test_retention_drops_whole_old_months_and_purges_idempotency_keys(
    db: Database,
) -> None:
    now = utcnow()
    old = await add_note(db, month_start(now) - timedelta(days=40))
    current = await add_note(db, now)
    kept = await add_note(db, months_after(month_start(now), 2) + timedelta(hours=1))
    # The clock of two months on: everything before that month is past retention.
    later = months_after(month_start(now), 2) + timedelta(days=1)
    async with db.begin() as conn:
        await conn.execute(idempotency_keys.insert(), [
            {"producer": "svc", "key": key, "status_code": 201, "response": {},
             "created_at": later - age}
            for key, age in (("stale", timedelta(hours=25)), ("fresh", timedelta(hours=1)))])
    report = await maintenance.apply_retention(db, later, retention_days=1)
    assert report.idempotency_keys == 1
    assert await counts(db, old) == (0, 0, 0)
    assert await counts(db, current) == (0, 0, 0)
    assert await counts(db, kept) == (1, 1, 1)
    async with db.begin() as conn:
        keys = [row[0] for row in await conn.execute(sa.select(idempotency_keys.c.key))]
    assert keys == ["fresh"]
    if db.dialect == "postgresql":
        gone = {f"{t}_{p}" for t in store.TABLES
                for p in ("legacy", f"p{now:%Y%m}", f"p{next_month(month_start(now)):%Y%m}")}
        assert set(report.partitions) == gone
        assert not gone & await relations(db)
    else:
        assert report.notifications == 2
    again = await maintenance.apply_retention(db, later, retention_days=1)
    assert (again.partitions, again.notifications, again.idempotency_keys) == ([], 0, 0)


async def test_no_retention_keeps_notifications(db: Database) -> None:
    old = await add_note(db, utcnow() - timedelta(days=400))
    report = await maintenance.apply_retention(db, utcnow(), retention_days=0)
    assert report.partitions == [] and report.notifications == 0
    assert await counts(db, old) == (1, 1, 1)


async def test_sqlite_retention_deletes_in_batches(db: Database,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL drops partitions instead")
    monkeypatch.setattr(store, "SQLITE_BATCH", 2)
    old = [await add_note(db, utcnow() - timedelta(days=10, minutes=n)) for n in range(5)]
    young = await add_note(db, utcnow())
    assert await maintenance.ensure_partitions(db, utcnow(), 3) == []
    report = await maintenance.apply_retention(db, utcnow(), retention_days=7)
    assert report.notifications == 5
    for note_id in old:
        assert await counts(db, note_id) == (0, 0, 0)
    assert await counts(db, young) == (1, 1, 1)


async def test_deleting_a_notification_takes_its_attempts(db: Database) -> None:
    note_id = await add_note(db, utcnow())
    async with db.begin() as conn:
        assert await notification_store.delete_owned(conn, "ann", note_id, utcnow())
    assert await counts(db, note_id) == (0, 0, 0)


async def test_maintenance_runs_at_start_and_stops(db: Database) -> None:
    runner = Maintenance(db, retention_days=0, every_s=3600)
    runner.start()
    try:
        for _ in range(500):
            if runner.runs:
                break
            await asyncio.sleep(0.01)
        assert runner.runs == 1
    finally:
        await runner.stop()
    await runner.stop()  # stopping twice is harmless


async def test_maintenance_survives_a_database_that_fails() -> None:
    broken = Database("postgresql+asyncpg://postgres@127.0.0.1:1/none", pool_size=1)
    runner = Maintenance(broken, retention_days=0, every_s=0.01)
    try:
        with pytest.raises(Exception):  # noqa: B017 - the loop below must swallow it
            await runner.run_once()
        runner.start()
        await asyncio.sleep(0.05)
        assert runner.runs == 0  # failed runs are not counted, and the task lives on
    finally:
        await runner.stop()
        await broken.dispose()


def test_cli_ensure_and_prune(database_url: str, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("RETENTION_DAYS", "30")
    assert main(["partitions", "ensure", "--ahead", "3"]) == 0
    assert "Created 0 partition(s)" in capsys.readouterr().out
    assert main(["partitions", "prune"]) == 0
    assert "Dropped 0 partition(s)" in capsys.readouterr().out
    assert main(["partitions", "ensure", "--ahead", "-1"]) == 2
    assert "--ahead" in capsys.readouterr().err


# The upgrade of a populated database, in place -------------------------------------------


@pytest.fixture
def scratch_pg() -> Iterator[str]:
    if not _pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {PG_DSN}")
        pytest.skip("PostgreSQL is not reachable")
    name = f"tidings_up_{uuid.uuid4().hex[:12]}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_upgrade_turns_populated_tables_into_first_partitions_in_place(
    scratch_pg: str,
) -> None:
    await asyncio.to_thread(upgrade, scratch_pg, "0004")
    now = utcnow()
    db = Database(scratch_pg, pool_size=2)
    try:
        ids = [id_at(now - timedelta(days=days)) for days in (0, 45, 400)]
        async with db.begin() as conn:
            for n, note_id in enumerate(ids):
                await conn.execute(sa.text(
                    "INSERT INTO notifications (id, user_id, type, title, message, channel,"
                    " priority, status, created_at, visible_at, in_app, producer) VALUES"
                    " (:id, 'ann', 't', 'T', 'M', 'general', 'normal', 'pending', now(), now(),"
                    " true, 'svc')"), {"id": note_id})
                delivery_id = (await conn.execute(sa.text(
                    "INSERT INTO notification_deliveries (notification_id, user_id, medium,"
                    " status, attempts, next_attempt_at, created_at, updated_at) VALUES"
                    " (:id, 'ann', 'email', 'sent', 1, now(), now(), now()) RETURNING id"),
                    {"id": note_id})).scalar_one()
                await conn.execute(sa.text(
                    "INSERT INTO delivery_attempts (delivery_id, at, outcome, elapsed_ms)"
                    " VALUES (:d, now(), 'sent', :n)"), {"d": delivery_id, "n": n})
            before = dict((await conn.execute(sa.text(
                "SELECT relname, oid::bigint FROM pg_class WHERE relname IN"
                " ('notifications', 'notification_deliveries', 'delivery_attempts')"))).all())
            heap = (await conn.execute(sa.text(
                "SELECT pg_relation_filenode('notifications')"))).scalar_one()
        await db.dispose()

        await asyncio.to_thread(upgrade, scratch_pg)

        async with db.begin() as conn:
            after = dict((await conn.execute(sa.text(
                "SELECT relname, oid::bigint FROM pg_class WHERE relname LIKE '%\\_legacy'"
                " AND relispartition AND relkind = 'r'"))).all())
            # The old tables are the first partitions: same relations, same heap files.
            assert after == {f"{name}_legacy": oid for name, oid in before.items()}
            assert (await conn.execute(sa.text(
                "SELECT pg_relation_filenode('notifications_legacy')"))).scalar_one() == heap
            kinds = set((await conn.execute(sa.text(
                "SELECT relkind::text FROM pg_class WHERE relname IN"
                " ('notifications', 'notification_deliveries', 'delivery_attempts')"))).scalars())
            assert kinds == {"p"}
            found = await notification_store.get_many(conn, ids, cipher=None)
            assert sorted(n.id for n in found) == sorted(ids)
            attempts = (await conn.execute(sa.select(
                delivery_attempts.c.notification_id).order_by(delivery_attempts.c.elapsed_ms)
            )).scalars().all()
            assert list(attempts) == ids
        for note_id in ids:
            assert await partition_of(db, "notifications", "id", note_id) == \
                "notifications_legacy"
        fresh = await add_note(db, months_after(month_start(now), 1) + timedelta(days=1))
        assert await partition_of(db, "notifications", "id", fresh) == \
            f"notifications_p{months_after(month_start(now), 1):%Y%m}"
        assert await counts(db, fresh) == (1, 1, 1)
        await db.dispose()

        # And back down: the rows written since come back into the plain tables.
        await asyncio.to_thread(downgrade, scratch_pg, "0004")
        async with db.begin() as conn:
            total = (await conn.execute(sa.text("SELECT count(*) FROM notifications"))
                     ).scalar_one()
            oid = (await conn.execute(sa.text(
                "SELECT oid::bigint FROM pg_class WHERE relname = 'notifications'"))
                   ).scalar_one()
        assert (total, oid) == (4, before["notifications"])
        await db.dispose()
        await asyncio.to_thread(upgrade, scratch_pg)
    finally:
        await db.dispose()


async def test_upgrade_of_an_empty_database_starts_months_at_the_current_one(
    scratch_pg: str,
) -> None:
    await asyncio.to_thread(upgrade, scratch_pg)
    db = Database(scratch_pg, pool_size=1)
    try:
        note_id = await add_note(db, datetime.now(UTC))
        assert await partition_of(db, "notifications", "id", note_id) == \
            f"notifications_p{datetime.now(UTC):%Y%m}"
    finally:
        await db.dispose()


async def test_a_maintenance_run_creates_what_comes_and_drops_what_aged(db: Database) -> None:
    now = utcnow()
    old = await add_note(db, now - timedelta(days=100))
    later = months_after(month_start(now), 5)
    report = await Maintenance(db, retention_days=30, clock=lambda: later).run_once()
    assert await counts(db, old) == (0, 0, 0)
    if db.dialect == "postgresql":
        assert f"notifications_p{later:%Y%m}" in await relations(db)
        assert "notifications_legacy" in report.partitions
    else:
        assert report.notifications == 1


def test_ids_that_are_not_uuid7_have_no_time() -> None:
    assert store.prefix_time("not-an-id-at-all") is None
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    assert store.prefix_time(id_at(moment)) == moment
    assert store.is_partition("notifications_p202603")
    assert not store.is_partition("notifications") and not store.is_partition(None)
