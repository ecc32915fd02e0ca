"""Monthly partitions (PostgreSQL) and retention (every dialect).

`notifications`, `notification_deliveries` and `delivery_attempts` are range-partitioned on
the notification id. Ids are UUIDv7 strings, whose first 13 characters (`xxxxxxxx-xxxx`) are
the creation millisecond in hex, so under the "C" collation (byte order) id order is time
order and a month is one id range: from the prefix of its first millisecond to the prefix
of the next month's. Every table has a month partition of the same name suffix
(`_pYYYYMM`), a first partition `_legacy` (the table as it was before partitioning, which
holds everything older) and a `_default` partition for whatever no range takes.

Retention drops whole months (detach, then drop: no row-by-row delete, no bloat); SQLite
has no partitions and deletes old notifications in batches instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.reference_tables import idempotency_keys
from tidings.store.tables import delivery_attempts, notification_deliveries, notifications

# Children before parents: retention detaches and drops in this order, so no foreign key
# ever points into a partition that is going away.
TABLES = ("delivery_attempts", "notification_deliveries", "notifications")
# Storage settings of every deliveries partition: a queue churns, so it is vacuumed long
# before the default 20% of dead rows (a partitioned parent takes no such settings).
QUEUE_STORAGE = ("autovacuum_vacuum_scale_factor = 0.01, "
                 "autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 1")
IDEMPOTENCY_TTL = timedelta(hours=24)
SQLITE_BATCH = 1000
# Any two processes running maintenance at once take turns on this lock (DDL races would
# otherwise fail on "relation already exists").
_LOCK_KEY = 0x7469_6469_6E67_7301  # "tidings" + 1

_PARTITION = re.compile(r"^(notifications|notification_deliveries|delivery_attempts)_"
                        r"(p\d{6}|legacy|default)$")
_UPPER = re.compile(r"TO \('([0-9a-f-]+)'\)")


def is_partition(name: str | None) -> bool:
    """Whether a table name is one of the partitions (which tables.py does not declare)."""
    return name is not None and _PARTITION.match(name) is not None


def _declared_name(name: str | None, type_: str, _parents: object) -> bool:
    return not (type_ == "table" and is_partition(name))


def _declared_object(item: object, _name: str | None, type_: str, _reflected: bool,
                     _compare_to: object) -> bool:
    # A foreign key to a partitioned table shows up once per partition it points into.
    if type_ == "foreign_key_constraint" and isinstance(item, sa.ForeignKeyConstraint):
        return not is_partition(item.referred_table.name)
    return True


def schema_filters() -> dict[str, object]:
    """Alembic options that leave the partitions out of schema comparisons: they are made
    at run time, so tables.py does not declare them."""
    return {"include_name": _declared_name, "include_object": _declared_object}


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def id_prefix(moment: datetime) -> str:
    """The first 13 characters of a UUIDv7 made at `moment`: a range bound for its month.
    Every id of that millisecond or later compares >= it under the "C" collation."""
    hex12 = f"{int(moment.timestamp() * 1000) & 0xFFFF_FFFF_FFFF:012x}"
    return f"{hex12[:8]}-{hex12[8:]}"


def prefix_time(notification_id: str) -> datetime | None:
    """When a UUIDv7 id was made; None for anything that is not one."""
    try:
        ms = int(notification_id[:8] + notification_id[9:13], 16)
    except ValueError:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC)


def partition_name(table: str, start: datetime) -> str:
    return f"{table}_p{start:%Y%m}"


def create_month_sql(table: str, start: datetime) -> str:
    """DDL of one month's partition (its indexes follow the parent's by themselves)."""
    storage = f" WITH ({QUEUE_STORAGE})" if table == "notification_deliveries" else ""
    return (f'CREATE TABLE "{partition_name(table, start)}" PARTITION OF "{table}" '
            f"FOR VALUES FROM ('{id_prefix(start)}') TO ('{id_prefix(next_month(start))}')"
            f"{storage}")


@dataclass(frozen=True, slots=True)
class Partition:
    table: str
    name: str
    upper: str | None  # the exclusive upper bound; None for the default partition


async def partitions(conn: AsyncConnection, table: str) -> list[Partition]:
    """The partitions of `table` with their upper bounds, as PostgreSQL reports them."""
    result = await conn.execute(sa.text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:t AS regclass) "
        "ORDER BY c.relname"), {"t": table})
    found = []
    for name, bound in result:
        upper = _UPPER.search(bound or "")
        found.append(Partition(table, name, upper.group(1) if upper else None))
    return found


async def ensure(conn: AsyncConnection, now: datetime, ahead: int) -> list[str]:
    """Create the partitions of the current month and the `ahead` next ones, for all three
    tables; returns the names created (none when they all exist: idempotent). A month the
    legacy partition already covers is left to it. PostgreSQL only: elsewhere, nothing."""
    if conn.dialect.name != "postgresql":
        return []
    await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    created: list[str] = []
    for table in TABLES:
        existing = await partitions(conn, table)
        names = {p.name for p in existing}
        legacy = next((p.upper for p in existing if p.name == f"{table}_legacy"), None)
        covered = legacy or ""
        start = month_start(now)
        for _ in range(ahead + 1):
            name = partition_name(table, start)
            if name not in names and id_prefix(start) >= covered:
                await conn.execute(sa.text(create_month_sql(table, start)))
                created.append(name)
            start = next_month(start)
    return created


async def purge_idempotency_keys(conn: AsyncConnection, now: datetime) -> int:
    """Forget idempotency keys older than 24 hours (a producer retries within minutes)."""
    result = await conn.execute(
        idempotency_keys.delete().where(idempotency_keys.c.created_at < now - IDEMPOTENCY_TTL))
    return int(result.rowcount or 0)


async def drop_old_partitions(conn: AsyncConnection, cutoff: datetime) -> list[str]:
    """Detach and drop every month (and the legacy partition) whose ids all come before
    `cutoff`, attempts first, then deliveries, then notifications."""
    await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    bound = id_prefix(cutoff)
    dropped: list[str] = []
    for table in TABLES:
        for part in await partitions(conn, table):
            if part.upper is not None and part.upper <= bound:
                await conn.execute(sa.text(
                    f'ALTER TABLE "{table}" DETACH PARTITION "{part.name}"'))
                await conn.execute(sa.text(f'DROP TABLE "{part.name}"'))
                dropped.append(part.name)
    return dropped


async def delete_old_batch(conn: AsyncConnection, cutoff: datetime, limit: int) -> int:
    """SQLite retention, one batch: up to `limit` of the oldest notifications made before
    `cutoff`, their attempts and deliveries first; returns how many notifications went.
    Ids are UUIDv7, so "made before" is an id range on the primary key."""
    ids = sa.select(notifications.c.id).where(notifications.c.id < id_prefix(cutoff)) \
        .order_by(notifications.c.id).limit(limit)
    chosen = [row[0] for row in await conn.execute(ids)]
    if not chosen:
        return 0
    await conn.execute(delivery_attempts.delete().where(
        delivery_attempts.c.notification_id.in_(chosen)))
    await conn.execute(notification_deliveries.delete().where(
        notification_deliveries.c.notification_id.in_(chosen)))
    await conn.execute(notifications.delete().where(notifications.c.id.in_(chosen)))
    return len(chosen)
