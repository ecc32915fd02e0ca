"""The queue and the inbox states (DESIGN section 12): among due deliveries the claim
takes `critical` first, then `high`, then the rest, oldest first within each (through the
claim's index on PostgreSQL); an expired or canceled notification reaches no medium, its
email never reaching the (real, loopback) SMTP server (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import Client, RunningServer, make_settings, start_server
from tests.fakes.smtp import ScriptedHandler, smtp_server
from tests.test_inbox_states import instant, make_due
from tidings.domain.ids import uuid7
from tidings.domain.model import utcnow
from tidings.store import queue as store
from tidings.store.database import Database
from tidings.store.tables import notification_deliveries as deliveries
from tidings.store.tables import notifications

pytestmark = pytest.mark.both_databases

NOTE = {"type": "invoice", "title": "Invoice ready", "message": "Pay soon"}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=2)
    try:
        yield database
    finally:
        await database.dispose()


def _rows(count: int, rank: int, due: datetime, status: str = "pending"
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    now = utcnow()
    notes, rows = [], []
    for _ in range(count):
        note_id = uuid7()
        notes.append(dict(id=note_id, user_id="ann", type="t", title="T", message="M",
                          channel="c", priority="medium", status="pending", created_at=now,
                          visible_at=now, in_app=False, producer="svc"))
        rows.append(dict(notification_id=note_id, user_id="ann", medium="email",
                         status=status, attempts=0, next_attempt_at=due, created_at=now,
                         updated_at=now, rank=rank))
    return notes, rows


async def add(db: Database, rank: int, due: datetime) -> str:
    notes, rows = _rows(1, rank, due)
    async with db.begin() as conn:
        await conn.execute(notifications.insert(), notes)
        await conn.execute(deliveries.insert(), rows)
    return str(notes[0]["id"])


async def test_the_claim_takes_critical_then_high_then_the_rest_oldest_first(
    db: Database
) -> None:
    now = utcnow()
    old_medium = await add(db, 2, now - timedelta(minutes=10))
    new_high = await add(db, 1, now - timedelta(seconds=5))
    old_high = await add(db, 1, now - timedelta(seconds=50))
    new_critical = await add(db, 0, now - timedelta(seconds=1))
    await add(db, 0, now + timedelta(hours=1))  # critical, but not due
    order = []
    for _ in range(5):
        async with db.begin() as conn:
            order += [c.notification_id for c in await store.claim(conn, now, 1, 30.0)]
    assert order == [new_critical, old_high, new_high, old_medium]


async def test_a_create_ranks_its_deliveries_by_priority(server: RunningServer) -> None:
    async with server.http("billing", "service") as http:
        for priority in ("low", "medium", "high", "critical"):
            answer = await http.post("/api/notifications", json={
                **NOTE, "user_id": "ann", "priority": priority, "media": ["in_app"]})
            assert answer.status_code == 201
    async with server.services.db.begin() as conn:
        ranks = dict((await conn.execute(
            sa.select(notifications.c.priority, deliveries.c.rank).join(
                deliveries, deliveries.c.notification_id == notifications.c.id))).all())
    assert ranks == {"low": 2, "medium": 2, "high": 1, "critical": 0}


async def test_the_claim_reads_its_index_in_priority_order_on_postgresql(
    db: Database, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the plan checked is PostgreSQL's")
    now = utcnow()
    async with db.begin() as conn:
        for rank in (0, 1, 2):  # a backlog: thousands due, many more finished
            notes, rows = _rows(2000, rank, now - timedelta(seconds=rank))
            done_notes, done = _rows(4000, rank, now, status="sent")
            await conn.execute(notifications.insert(), notes + done_notes)
            await conn.execute(deliveries.insert(), rows + done)
        await conn.execute(sa.text("ANALYZE notification_deliveries"))
        due = (sa.select(deliveries.c.id)
               .where(store.QUEUED.waiting, deliveries.c.next_attempt_at <= now,
                      deliveries.c.digest_id.is_(None))
               .order_by(deliveries.c.rank, deliveries.c.next_attempt_at).limit(100)
               .with_for_update(skip_locked=True))
        sql = str(due.compile(conn.sync_connection,
                              compile_kwargs={"literal_binds": True}))
        plan = [row[0] for row in await conn.execute(sa.text(f"EXPLAIN {sql}"))]
    text = "\n".join(plan)
    # Every partition read through the claim's index, already in (rank, due) order: no
    # sort of the backlog, and the limit stops the scan early.
    assert "rank_next_attempt_at_idx" in text or "ix_deliveries_queue" in text, text
    assert "Sort  (" not in text, text  # a Sort node; "Sort Key" of Merge Append is fine
    assert "Seq Scan" not in text, text


# -- expiry and cancel against a real SMTP server ------------------------------------------


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[ScriptedHandler, int]]:
    handler = ScriptedHandler()
    async with smtp_server(handler) as port:
        yield handler, port


@pytest.fixture
async def mailer(database_url: str, smtp: tuple[ScriptedHandler, int]
                 ) -> AsyncIterator[RunningServer]:
    settings = make_settings(
        database_url, smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_starttls=False,
        email_from="tidings@example.test", public_url="https://notify.example.test")
    running = await start_server(settings)
    try:
        async with running.http("accounts", "service") as http:
            for user in ("alice", "bob"):
                answer = await http.put(f"/api/users/{user}/contact",
                                        json={"email": f"{user}@example.test"})
                assert answer.status_code == 200, answer.text
        yield running
    finally:
        await running.stop()


async def create(server: RunningServer, **fields: Any) -> Any:
    async with server.http("billing", "service") as http:
        answer = await http.post("/api/notifications", json={**NOTE, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()


async def email_row(server: RunningServer, note_id: str) -> tuple[str, str | None]:
    """The email delivery's (status, last_error) once it has ended (polled: the worker
    settles in its own task)."""
    for _ in range(500):
        async with server.services.db.begin() as conn:
            status, error = (await conn.execute(
                sa.select(deliveries.c.status, deliveries.c.last_error).where(
                    deliveries.c.notification_id == note_id,
                    deliveries.c.medium == "email"))).one()
        if status in ("sent", "dead", "skipped"):
            return status, error
        await asyncio.sleep(0.02)
    raise AssertionError(f"the email delivery of {note_id} never ended")


async def test_an_expired_notification_goes_by_no_medium(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    # A socket of this server's own (the `connect` fixture would start a second server,
    # whose worker, without SMTP, would settle the emails here `skipped`).
    tab = Client()
    await tab.sio.connect(mailer.url, auth={"token": mailer.token("alice")},
                          transports=["websocket"])
    note = await create(mailer, user_id="alice", media=["in_app", "email"],
                        scheduled_at=instant(hours=1), expires_at=instant(hours=2))
    # As if two hours had passed: due, and expired.
    await make_due(mailer, note["id"],
                   expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert await mailer.services.scheduler.release_due() == 0  # nothing shown in-app
    control = await create(mailer, user_id="bob", media=["email"])  # wakes the worker
    await asyncio.wait_for(handler.arrived.wait(), 10)
    assert await email_row(mailer, control["id"]) == ("sent", None)
    assert await email_row(mailer, note["id"]) == ("skipped", "the notification expired")
    assert [mail.rcpt_tos for mail in handler.received] == [["bob@example.test"]]
    assert tab.queue("notification").empty()
    await tab.close()


async def test_a_canceled_notification_goes_by_no_medium(
    mailer: RunningServer, smtp: tuple[ScriptedHandler, int]
) -> None:
    handler, _ = smtp
    note = await create(mailer, user_id="alice", media=["email"],
                        scheduled_at=instant(hours=1))
    async with mailer.http("billing", "service") as http:
        assert (await http.post(f"/api/notifications/{note['id']}/cancel")).status_code == 200
    await make_due(mailer, note["id"])  # its time comes: still nothing goes
    control = await create(mailer, user_id="bob", media=["email"])
    await asyncio.wait_for(handler.arrived.wait(), 10)
    assert await email_row(mailer, control["id"]) == ("sent", None)
    assert await email_row(mailer, note["id"]) == ("skipped", "canceled by its producer")
    assert [mail.rcpt_tos for mail in handler.received] == [["bob@example.test"]]
