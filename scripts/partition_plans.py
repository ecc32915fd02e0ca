"""The query plans of docs/DATABASE.md: 10M notifications in monthly partitions of a scratch
PostgreSQL database (created here, dropped at the end), then EXPLAIN ANALYZE of the inbox
page, the unread count, the replay, a fetch by id and the queue claim, written to
/tmp/partitions_bench/plans.txt. Run from the repository: .venv/bin/python
scripts/partition_plans.py (PostgreSQL at 127.0.0.1:5432, user postgres; ~10 minutes)."""
import asyncio
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import asyncpg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sqlalchemy.dialects import postgresql

from tidings.domain.model import utcnow
from tidings.domain.notification import InboxFilter
from tidings.jobs.migrate import upgrade
from tidings.store import notifications as N
from tidings.store import partitions as P
from tidings.store import queue as Q
from tidings.store.tables import notification_deliveries as dt
from tidings.store.tables import notifications as nt

NAME = "tidings_scratch_partitions_bench"
DSN = "postgresql://postgres@127.0.0.1:5432/"
MONTHS = 6
ROWS = 10_000_000
USERS = 20_000

def sql(q):
    return str(q.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))

async def main():
    admin = await asyncpg.connect(DSN + "postgres")
    await admin.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {NAME}")
    await asyncio.to_thread(upgrade, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{NAME}")
    c = await asyncpg.connect(DSN + NAME)
    now = utcnow()
    first = P.month_start(now)
    for _ in range(MONTHS - 1):
        first = P.month_start(first - timedelta(days=1))
    # The scratch database has no history: its empty first partitions make way for months.
    for t in P.TABLES:
        await c.execute(f"ALTER TABLE {t} DETACH PARTITION {t}_legacy")
        await c.execute(f"DROP TABLE {t}_legacy")
        m = first
        while m < P.month_start(now):
            await c.execute(P.create_month_sql(t, m))
            m = P.next_month(m)
    span_ms = int((now - first).total_seconds() * 1000)
    start_ms = int(first.timestamp() * 1000)
    t0 = time.time()
    # Ids are made the way uuid7() makes them: 48 bits of milliseconds, then version,
    # variant and random bits (md5 of the row number here).
    await c.execute(f"""
    INSERT INTO notifications (id, user_id, type, title, message, channel, priority, status,
        created_at, visible_at, read_at, data, in_app, producer)
    SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || substr(r, 1, 3) || '-8'
           || substr(r, 4, 3) || '-' || substr(r, 7, 12),
           'user-' || (i % {USERS}), 'order.shipped', 'Your order shipped', 'Tracking inside',
           'orders', 'normal', CASE WHEN i % 5 = 0 THEN 'pending' ELSE 'read' END,
           at, at, CASE WHEN i % 5 = 0 THEN NULL ELSE at END, '{{"order": 1}}'::jsonb, true,
           'shop'
    FROM (SELECT i, lpad(to_hex({start_ms}::bigint + (i::bigint * {span_ms} / {ROWS})), 12, '0') AS h,
                 md5(i::text) AS r,
                 to_timestamp(({start_ms}::bigint + (i::bigint * {span_ms} / {ROWS})) / 1000.0) AS at
          FROM generate_series(0, {ROWS - 1}) AS i) s""")
    print("notifications", time.time() - t0, flush=True)
    t0 = time.time()
    # An email delivery for one notification in five; the last 5,000 are still pending.
    await c.execute("""
    INSERT INTO notification_deliveries (notification_id, user_id, medium, status, attempts,
        next_attempt_at, created_at, updated_at)
    SELECT id, user_id, 'email', CASE WHEN created_at > now() - interval '40 minutes' THEN 'pending' ELSE 'sent' END,
           1, created_at, created_at, created_at
    FROM notifications WHERE status = 'pending'""")
    print("deliveries", time.time() - t0, flush=True)
    await c.execute("VACUUM ANALYZE notifications")
    await c.execute("VACUUM ANALYZE notification_deliveries")
    out = []
    sizes = await c.fetch("""SELECT c.relname, c.reltuples::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent IN ('notifications'::regclass, 'notification_deliveries'::regclass) ORDER BY 1""")
    out.append("-- partitions and their rows (estimates)\n" + "\n".join(f"{r[0]}: {r[1]}" for r in sizes))
    pending = await c.fetchval("SELECT count(*) FROM notification_deliveries WHERE status = 'pending'")
    out.append(f"-- pending email deliveries: {pending}")
    user = "user-4242"
    cursor = await c.fetchrow(f"SELECT visible_at, id FROM notifications WHERE user_id = '{user}' ORDER BY visible_at DESC, id DESC OFFSET 40 LIMIT 1")
    queries = {
        "inbox page (first page, 20 + 1)": sql(N._select().where(nt.c.user_id == user, *N._filtered(nt.c, now, InboxFilter())).order_by(nt.c.visible_at.desc(), nt.c.id.desc()).limit(21)),
        "unread count": sql(sa.select(sa.func.count()).select_from(nt).where(nt.c.user_id == user, *N._filtered(nt.c, now, InboxFilter(unread=True)))),
        "replay (missed since a cursor, 100)": sql(N._select().where(nt.c.user_id == user, nt.c.in_app.is_(True), N._visible(now), sa.tuple_(nt.c.visible_at, nt.c.id) > sa.tuple_(sa.literal(cursor["visible_at"]), sa.literal(cursor["id"]))).order_by(nt.c.visible_at, nt.c.id).limit(100)),
        "get by id": sql(N._select().where(nt.c.id == cursor["id"], nt.c.user_id == user)),
    }
    due = sa.select(dt.c.id).where(Q.DUE, dt.c.next_attempt_at <= now).order_by(dt.c.next_attempt_at).limit(100).with_for_update(skip_locked=True)
    queries["queue claim (100, rolled back)"] = sql(dt.update().where(dt.c.id.in_(due.scalar_subquery())).values(status="sending", lease_token="x", locked_until=now, next_attempt_at=now + timedelta(seconds=30), attempts=dt.c.attempts + 1, updated_at=now).returning(dt.c.id, dt.c.notification_id))
    for title, q in queries.items():
        for _ in range(2):  # the second run is the one shown: caches warm
            tr = c.transaction(); await tr.start()
            plan = await c.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + q)
            await tr.rollback()
        out.append(f"-- {title}\n{q}\n" + "\n".join(r[0] for r in plan))
    os.makedirs("/tmp/partitions_bench", exist_ok=True)
    open("/tmp/partitions_bench/plans.txt", "w").write("\n\n".join(out) + "\n")
    await c.close()
    await admin.execute(f"DROP DATABASE {NAME} WITH (FORCE)")
    await admin.close()
    print("done")

asyncio.run(main())
