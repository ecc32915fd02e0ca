"""SQL for webhook registrations, and for enqueueing the events they subscribe to as
delivery rows (medium "webhook") that the delivery queue sends like any other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.delivery import DeliveryMedium
from tidings.domain.model import DeliveryStatus
from tidings.domain.webhook import Webhook, event_payload
from tidings.store.reference_tables import webhooks
from tidings.store.tables import notification_deliveries as deliveries

INSERT_SLICE = 1000
GONE = "the webhook was deleted"

_COLUMNS = (webhooks.c.id, webhooks.c.url, webhooks.c.events, webhooks.c.secret,
            webhooks.c.created_by, webhooks.c.created_at)


def _select() -> sa.Select[Any]:
    return sa.select(*_COLUMNS)


def _record(row: Row[Any]) -> Webhook:
    id_, url, events, secret, created_by, created_at = tuple(row)
    return Webhook(id_, url, tuple(events), secret, created_by, created_at)


async def insert(conn: AsyncConnection, hook: Webhook) -> None:
    await conn.execute(webhooks.insert().values(
        id=hook.id, url=hook.url, events=list(hook.events), secret=hook.secret,
        created_by=hook.created_by, created_at=hook.created_at,
    ))


async def list_page(
    conn: AsyncConnection, limit: int, before: tuple[datetime, str] | None
) -> list[Webhook]:
    """Newest first, keyset-paginated on (created_at, id); `limit + 1` records tell
    whether another page exists."""
    query = _select()
    if before is not None:
        query = query.where(sa.tuple_(webhooks.c.created_at, webhooks.c.id) < before)
    query = query.order_by(webhooks.c.created_at.desc(), webhooks.c.id.desc()).limit(limit + 1)
    return [_record(row) for row in await conn.execute(query)]


async def get(conn: AsyncConnection, webhook_id: str) -> Webhook | None:
    row = (await conn.execute(_select().where(webhooks.c.id == webhook_id))).first()
    return _record(row) if row is not None else None


async def delete(conn: AsyncConnection, webhook_id: str, now: datetime) -> bool:
    """Remove the registration; its events still waiting in the queue are skipped (one
    being sent right now finishes: its worker holds what it needs)."""
    result = await conn.execute(webhooks.delete().where(webhooks.c.id == webhook_id))
    if not result.rowcount:
        return False
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.webhook_id == webhook_id,
               deliveries.c.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.SKIPPED, last_error=GONE, updated_at=now)
    )
    return True


async def subscribers(conn: AsyncConnection, event: str) -> list[str]:
    """The ids of the registrations subscribed to `event`, oldest first. One query over a
    table of a handful of rows; the events lists are matched here rather than in SQL, as
    the two dialects store JSON differently."""
    rows = await conn.execute(
        sa.select(webhooks.c.id, webhooks.c.events).order_by(webhooks.c.created_at, webhooks.c.id)
    )
    return [webhook_id for webhook_id, events in rows if event in events]


async def enqueue_webhook_events(
    conn: AsyncConnection,
    event: str,
    items: Sequence[tuple[str, str, dict[str, Any]]],
    now: datetime,
    traces: Mapping[str, str | None] | None = None,
) -> int:
    """For every registration subscribed to `event` and every `(notification_id, user_id,
    data)` item, one pending delivery row (medium "webhook"), due at `now`, whose payload
    is `{"type": event, "data": data}`. Returns how many rows were written: 0, after one
    small query, when no registration wants the event.

    Runs in the caller's transaction, so the events commit (or roll back) with the change
    they report. The event's `webhook-id` is derived from the row id at send time
    (`domain.webhook.event_id`), its timestamp from the row's `created_at`. `traces`:
    the traceparent each notification's events continue (tracing on)."""
    if not items:
        return 0
    targets = await subscribers(conn, event)
    if not targets:
        return 0
    rows = [
        {
            "notification_id": notification_id,
            "user_id": user_id,
            "medium": DeliveryMedium.WEBHOOK,
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "webhook_id": webhook_id,
            "event": event,
            "payload": event_payload(event, data),
            "created_at": now,
            "updated_at": now,
            "trace_parent": traces.get(notification_id) if traces else None,
        }
        for notification_id, user_id, data in items
        for webhook_id in targets
    ]
    for start in range(0, len(rows), INSERT_SLICE):
        await conn.execute(deliveries.insert(), rows[start:start + INSERT_SLICE])
    return len(rows)


async def webhook_targets(
    conn: AsyncConnection, webhook_ids: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """Each registered webhook's (url, secret); a removed one is absent."""
    if not webhook_ids:
        return {}
    result = await conn.execute(
        sa.select(webhooks.c.id, webhooks.c.url, webhooks.c.secret)
        .where(webhooks.c.id.in_(sorted(set(webhook_ids))))
    )
    return {webhook_id: (url, secret) for webhook_id, url, secret in result}
