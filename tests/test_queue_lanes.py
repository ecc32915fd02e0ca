"""The one claim of the delivery table (`tidings.store.queue.claim`) and its two lanes:
email, push and webhooks under a lease; scheduled in-app deliveries marked sent at once.
Neither lane takes the other's rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from tidings.domain.delivery import DeliveryMedium
from tidings.domain.ids import uuid7
from tidings.domain.model import DeliveryStatus, utcnow
from tidings.store import queue as store
from tidings.store.database import Database
from tidings.store.tables import notification_deliveries as deliveries
from tidings.store.tables import notifications

pytestmark = pytest.mark.both_databases


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=2)
    try:
        yield database
    finally:
        await database.dispose()


async def add(db: Database, medium: str, status: str, due: datetime) -> str:
    note_id, now = uuid7(), utcnow()
    async with db.begin() as conn:
        await conn.execute(notifications.insert().values(
            id=note_id, user_id="ann", type="t", title="T", message="M", channel="general",
            priority="medium", status="pending", created_at=now, visible_at=due,
            in_app=medium == "in_app", producer="svc"))
        await conn.execute(deliveries.insert().values(
            notification_id=note_id, user_id="ann", medium=medium, status=status,
            attempts=0, next_attempt_at=due, created_at=now, updated_at=now))
    return note_id


async def row(db: Database, note_id: str) -> tuple[str, int, str | None]:
    async with db.begin() as conn:
        found = (await conn.execute(
            sa.select(deliveries.c.status, deliveries.c.attempts, deliveries.c.lease_token)
            .where(deliveries.c.notification_id == note_id))).one()
    return found[0], found[1], found[2]


async def test_each_lane_claims_its_own_rows_in_due_order(db: Database) -> None:
    now = utcnow()
    later_in_app = await add(db, "in_app", "pending", now - timedelta(seconds=1))
    first_in_app = await add(db, "in_app", "pending", now - timedelta(seconds=2))
    future_in_app = await add(db, "in_app", "pending", now + timedelta(hours=1))
    sent_in_app = await add(db, "in_app", "sent", now - timedelta(seconds=3))
    email = await add(db, "email", "pending", now - timedelta(seconds=1))

    async with db.begin() as conn:
        assert await store.next_due(conn, lane=store.IN_APP) == now - timedelta(seconds=2)
        taken = await store.claim(conn, now, 1, lane=store.IN_APP)
    assert [c.notification_id for c in taken] == [first_in_app]  # the earliest due first
    assert taken[0].medium is DeliveryMedium.IN_APP
    assert await row(db, first_in_app) == (DeliveryStatus.SENT, 1, None)  # no lease

    async with db.begin() as conn:
        taken = await store.claim(conn, now, 10, lane=store.IN_APP)
    assert [c.notification_id for c in taken] == [later_in_app]
    assert await row(db, future_in_app) == ("pending", 0, None)
    assert await row(db, sent_in_app) == ("sent", 0, None)
    assert await row(db, email) == ("pending", 0, None)  # the queued lane's

    async with db.begin() as conn:
        queued = await store.claim(conn, now, 10, 30.0)
    assert [c.notification_id for c in queued] == [email]
    assert queued[0].medium is DeliveryMedium.EMAIL
    status, attempts, token = await row(db, email)
    assert (status, attempts, token) == ("sending", 1, queued[0].lease_token)
    async with db.begin() as conn:
        assert await store.next_due(conn, lane=store.IN_APP) == now + timedelta(hours=1)
