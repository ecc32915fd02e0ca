"""Time `tidings.store.queue.claim` on PostgreSQL with a large history of finished rows.

A scratch database of our own (created, migrated with `tidings migrate`, dropped after)
gets ``finished`` delivery rows that are done (`sent`, `delivered`, `dead`, `skipped`),
generated server-side with generate_series, then ``due`` pending email rows; each claim
call (its own transaction: begin, claim, commit) is timed until every due row is taken.
The finished rows sit in the same partition as the due ones, as they would a month in.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tidings.store.queue import claim

from .report import Report, latency_summary
from .scratchdb import async_url, scratch_postgres

# Ids inside one monthly partition (2026-11: '01a19467-e800' .. '01a22ee6-b000'); the
# finished history and the due rows use two prefixes of it.
HISTORY_PREFIX = "01a1a000-0000-7000-8000-"
DUE_PREFIX = "01a1b000-0000-7000-8000-"

_NOTIFICATIONS = """
INSERT INTO notifications (id, user_id, type, title, message, channel, priority, status,
    created_at, visible_at, in_app, producer)
SELECT :prefix || lpad(i::text, 12, '0'), 'u' || (i % 10000), 'bench', 't', 'm', 'general',
    'normal', :status, now() - interval '1 day', now() - interval '1 day', true, 'bench'
FROM generate_series(1, :n) AS i
"""

_HISTORY = """
INSERT INTO notification_deliveries (notification_id, user_id, medium, status, attempts,
    next_attempt_at, created_at, updated_at)
SELECT :prefix || lpad(((i + 1) / 2)::text, 12, '0'), 'u' || (i % 10000),
    CASE WHEN i % 2 = 0 THEN 'in_app' ELSE 'email' END,
    CASE WHEN i % 2 = 0 THEN 'delivered' WHEN i % 97 = 0 THEN 'dead'
         WHEN i % 31 = 0 THEN 'skipped' ELSE 'sent' END,
    1, now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'
FROM generate_series(1, :n) AS i
"""

_DUE = """
INSERT INTO notification_deliveries (notification_id, user_id, medium, status, attempts,
    next_attempt_at, created_at, updated_at)
SELECT :prefix || lpad(i::text, 12, '0'), 'u' || i, 'email', 'pending', 0,
    now() - interval '1 second' * i, now(), now()
FROM generate_series(1, :n) AS i
"""


async def claim_latency(admin_url: str, finished: int, due: int, limit: int) -> Report:
    report = Report("claim", "tidings.store.queue.claim on PostgreSQL")
    async with scratch_postgres(admin_url, "claim") as url:
        engine = create_async_engine(async_url(url))
        try:
            await _measure(engine, report, finished, due, limit)
        finally:
            await engine.dispose()
    return report


async def _measure(engine: AsyncEngine, report: Report, finished: int, due: int,
                   limit: int) -> None:
    started = time.monotonic()
    async with engine.begin() as conn:
        await conn.execute(sa.text(_NOTIFICATIONS),
                           {"prefix": HISTORY_PREFIX, "status": "read", "n": finished // 2})
        await conn.execute(sa.text(_HISTORY), {"prefix": HISTORY_PREFIX, "n": finished})
        await conn.execute(sa.text(_NOTIFICATIONS),
                           {"prefix": DUE_PREFIX, "status": "pending", "n": due})
        await conn.execute(sa.text(_DUE), {"prefix": DUE_PREFIX, "n": due})
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("VACUUM ANALYZE notification_deliveries"))
        await conn.execute(sa.text("VACUUM ANALYZE notifications"))
        rows = await conn.scalar(sa.text("SELECT count(*) FROM notification_deliveries"))
    report.add(rows=int(rows or 0), generate_s=time.monotonic() - started)
    async with engine.connect() as conn:
        plan = await conn.execute(sa.text(
            "EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM notification_deliveries WHERE "
            "status IN ('pending', 'sending') AND medium <> 'in_app' AND "
            "next_attempt_at <= now() AND digest_id IS NULL ORDER BY next_attempt_at "
            "LIMIT 100 FOR UPDATE SKIP LOCKED"))
        report.notes.append(" | ".join(str(r[0]).strip() for r in plan)[:600])
    timings: list[float] = []
    taken = 0
    for _ in range(due + 10):  # one warm-up call's worth of slack; stops when all taken
        begin = time.perf_counter()
        async with engine.begin() as conn:
            claimed = await claim(conn, datetime.now(UTC), limit, 30.0)
        timings.append((time.perf_counter() - begin) * 1000.0)
        taken += len(claimed)
        if not claimed:
            timings.pop()  # the empty claim at the end is not a claim of due rows
            break
    report.add(due=due, claimed=taken, limit=limit, calls=len(timings),
               **{f"claim_{k}": v for k, v in latency_summary(timings).items()})
