"""SQL of pacing: digest windows (rows, so they survive restarts), held deliveries and
their folding into one send, quiet-hours deferrals (and moving them when the quiet hours
change), and the hourly send counts of the throttle. The rules that decide when each
applies live in `tidings.domain.pacing`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.delivery import DeliveryMedium
from tidings.domain.model import DeliveryStatus
from tidings.store.database import upsert_into
from tidings.store.queue import CLAIMED, DUE, Claimed, claimed_of
from tidings.store.tables import digests, send_counts
from tidings.store.tables import notification_deliveries as deliveries

OPEN, SENDING = "open", "sending"  # a digest's own states
PENDING = DeliveryStatus.PENDING
HELD = (PENDING, DeliveryStatus.SENDING)


@dataclass(frozen=True, slots=True)
class Window:
    """An open digest window: its id, and when it closes (its held deliveries' due time,
    so the ordinary claim's index scan never wades through them before then)."""

    id: str
    closes_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimedDigest:
    """A closed digest this worker holds, with its held deliveries claimed under the same
    lease token (each counts one more try, as the digest does)."""

    id: str
    user_id: str
    key: str
    medium: DeliveryMedium
    attempts: int
    lease_token: str
    members: tuple[Claimed, ...]


async def open_windows(
    conn: AsyncConnection, wanted: Sequence[tuple[str, str]], key: str, closes_at: datetime,
    now: datetime,
) -> dict[tuple[str, str], Window]:
    """The digest each (user, medium) in `wanted` joins for `key`: its open window if one
    has not closed yet (whatever `closes_at` this caller would give it), else a new window
    from `now` to `closes_at`."""
    found: dict[tuple[str, str], Window] = {}
    users = sorted({user for user, _ in wanted})
    for start in range(0, len(users), 500):
        rows = await conn.execute(
            sa.select(digests.c.user_id, digests.c.medium, digests.c.id, digests.c.closes_at)
            .where(digests.c.user_id.in_(users[start:start + 500]), digests.c.key == key,
                   digests.c.status == OPEN, digests.c.closes_at > now)
            .order_by(digests.c.closes_at)
        )
        for user_id, medium, digest_id, closes in rows:
            found.setdefault((user_id, medium), Window(digest_id, closes))
    fresh = {pair: Window(str(uuid.uuid4()), closes_at) for pair in wanted if pair not in found}
    if fresh:
        await conn.execute(digests.insert(), [
            {"id": window.id, "user_id": user, "key": key, "medium": medium,
             "opens_at": now, "closes_at": closes_at, "status": OPEN, "attempts": 0,
             "next_attempt_at": closes_at, "updated_at": now}
            for (user, medium), window in fresh.items()])
        found.update(fresh)
    return found


async def count_send(conn: AsyncConnection, user_id: str, medium: str, hour: datetime,
                     limit: int | None) -> bool:
    """Count one send of (user, medium) in `hour`, unless `limit` sends are counted there
    already: then count nothing and answer False. The check and the increment are one
    statement, so workers side by side cannot both take the last place."""
    await conn.execute(
        upsert_into(conn, send_counts)
        .values(user_id=user_id, medium=medium, hour=hour, count=0)
        .on_conflict_do_nothing()
    )
    where = [send_counts.c.user_id == user_id, send_counts.c.medium == medium,
             send_counts.c.hour == hour]
    if limit is not None:
        where.append(send_counts.c.count < limit)
    result = await conn.execute(
        send_counts.update().where(*where).values(count=send_counts.c.count + 1))
    return bool(result.rowcount)


async def sends_in(conn: AsyncConnection, user_id: str, medium: str, hour: datetime) -> int:
    result = await conn.execute(
        sa.select(send_counts.c.count).where(send_counts.c.user_id == user_id,
                                             send_counts.c.medium == medium,
                                             send_counts.c.hour == hour))
    return int(result.scalar_one_or_none() or 0)


async def release(conn: AsyncConnection, claimed: Claimed, now: datetime, *,
                  due_at: datetime, deferred_until: datetime | None = None,
                  digest_id: str | None = None) -> bool:
    """Give a claimed delivery back untried: `pending` again, due at `due_at`, its claim's
    try uncounted (a deferral is not a try). With `deferred_until` it waits out quiet
    hours; with `digest_id` it is held for that digest. False if the lease was lost."""
    values: dict[str, object] = {
        "status": PENDING, "lease_token": None, "locked_until": None,
        "attempts": deliveries.c.attempts - 1, "next_attempt_at": due_at, "updated_at": now,
    }
    if deferred_until is not None:
        values["deferred_until"] = deferred_until
    if digest_id is not None:
        values["digest_id"] = digest_id
    result = await conn.execute(
        deliveries.update()
        .where(deliveries.c.id == claimed.id, deliveries.c.lease_token == claimed.lease_token)
        .values(**values))
    return bool(result.rowcount)


async def reschedule_deferred(conn: AsyncConnection, user_id: str, now: datetime,
                              due_at: datetime) -> int:
    """The user's quiet hours changed: every delivery of theirs still waiting out the old
    ones (`pending`, `deferred_until` ahead) is due at `due_at` instead (`now` when the new
    rule lets it go), and so is every digest those deliveries are held for. Returns how
    many deliveries moved. Reads the waiting part of the queue through its partial index:
    a contact change is rare, and a user's waiting rows are few."""
    waiting = (DUE, deliveries.c.next_attempt_at > now, deliveries.c.user_id == user_id,
               deliveries.c.status == PENDING, deliveries.c.deferred_until > now)
    held = [row[0] for row in await conn.execute(
        sa.select(deliveries.c.digest_id).distinct()
        .where(*waiting, deliveries.c.digest_id.is_not(None)))]
    moved = await conn.execute(
        deliveries.update().where(*waiting)
        .values(next_attempt_at=due_at, deferred_until=due_at, updated_at=now))
    if held:
        await conn.execute(
            digests.update().where(digests.c.id.in_(held), digests.c.status == OPEN)
            .values(next_attempt_at=due_at, updated_at=now))
    return int(moved.rowcount)


async def claim_digests(conn: AsyncConnection, now: datetime, limit: int,
                        lease_s: float) -> list[ClaimedDigest]:
    """Take up to `limit` digests whose window has closed (or whose retry or lease end is
    due), with all their held deliveries, under one fresh lease per digest."""
    until = now + timedelta(seconds=lease_s)
    due = (
        sa.select(digests.c.id)
        .where(digests.c.status.in_((OPEN, SENDING)), digests.c.next_attempt_at <= now)
        .order_by(digests.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [row[0] for row in await conn.execute(due)]
    claimed: list[ClaimedDigest] = []
    for digest_id in ids:
        token = str(uuid.uuid4())
        row = (await conn.execute(
            digests.update().where(digests.c.id == digest_id)
            .values(status=SENDING, lease_token=token, next_attempt_at=until,
                    attempts=digests.c.attempts + 1, updated_at=now)
            .returning(digests.c.user_id, digests.c.key, digests.c.medium, digests.c.attempts)
        )).one()
        members = await conn.execute(
            deliveries.update()
            .where(deliveries.c.digest_id == digest_id, deliveries.c.status.in_(HELD))
            .values(status=DeliveryStatus.SENDING, lease_token=token,
                    locked_until=until, next_attempt_at=until,
                    attempts=deliveries.c.attempts + 1, updated_at=now)
            .returning(*CLAIMED))
        held = sorted((claimed_of(m) for m in members), key=lambda m: m.id)
        claimed.append(ClaimedDigest(digest_id, row[0], row[1], DeliveryMedium(row[2]),
                                     row[3], token, tuple(held)))
    return claimed


async def defer_digest(conn: AsyncConnection, digest: ClaimedDigest, until: datetime,
                       now: datetime) -> None:
    """Quiet hours: the digest and its deliveries wait until `until`, this try uncounted."""
    await conn.execute(
        digests.update().where(digests.c.id == digest.id,
                               digests.c.lease_token == digest.lease_token)
        .values(status=OPEN, lease_token=None, next_attempt_at=until,
                attempts=digests.c.attempts - 1, updated_at=now))
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.digest_id == digest.id,
               deliveries.c.lease_token == digest.lease_token)
        .values(status=PENDING, lease_token=None, locked_until=None,
                attempts=deliveries.c.attempts - 1, next_attempt_at=until,
                deferred_until=until, updated_at=now))


async def settle_digest(conn: AsyncConnection, digest: ClaimedDigest, status: DeliveryStatus,
                        due_at: datetime | None, now: datetime) -> None:
    """Store how the digest's send ended (its deliveries are settled like any other). A
    retry makes it due again at `due_at`. Deliveries that joined while it was being sent
    are not lost: the digest is then due again at once, for them alone."""
    if status == PENDING:
        values: dict[str, object] = {"status": OPEN, "next_attempt_at": due_at or now}
    else:
        late = await conn.execute(
            sa.select(sa.func.count()).where(deliveries.c.digest_id == digest.id,
                                             deliveries.c.status == PENDING,
                                             sa.or_(deliveries.c.lease_token.is_(None),
                                                    deliveries.c.lease_token
                                                    != digest.lease_token)))
        if late.scalar_one():
            values = {"status": OPEN, "next_attempt_at": now, "attempts": 0}
        else:
            values = {"status": status, "next_attempt_at": now}
    await conn.execute(
        digests.update().where(digests.c.id == digest.id,
                               digests.c.lease_token == digest.lease_token)
        .values(lease_token=None, updated_at=now, **values))


async def next_due(conn: AsyncConnection) -> datetime | None:
    """When the next digest closes or is due again."""
    result = await conn.execute(
        sa.select(sa.func.min(digests.c.next_attempt_at))
        .where(digests.c.status.in_((OPEN, SENDING))))
    value: datetime | None = result.scalar_one_or_none()
    return value
