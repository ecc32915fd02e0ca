"""Which webhook events a change raises, written in the transaction of the change itself
(so an event exists exactly when its change committed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.delivery import DeliveryMedium
from tidings.domain.model import DeliveryStatus, Status, isoformat
from tidings.domain.notification import StatusChange
from tidings.domain.webhook import WebhookEventType
from tidings.store.queue import Settlement
from tidings.store.webhooks import enqueue_webhook_events


async def deliveries_settled(conn: AsyncConnection, settled: Sequence[Settlement],
                             now: datetime) -> int:
    """`delivery.sent` and `delivery.dead` for settled email and push deliveries (never
    for webhook deliveries themselves: events about events would loop)."""
    sent = [
        (s.delivery.notification_id, s.delivery.user_id, {
            "notification_id": s.delivery.notification_id, "user_id": s.delivery.user_id or None,
            "medium": s.delivery.medium, "delivery_id": s.delivery.id,
            "provider_id": s.provider_id})
        for s in settled
        if s.status == DeliveryStatus.SENT and s.delivery.medium != DeliveryMedium.WEBHOOK
    ]
    dead = [
        (s.delivery.notification_id, s.delivery.user_id, {
            "notification_id": s.delivery.notification_id, "user_id": s.delivery.user_id or None,
            "medium": s.delivery.medium, "delivery_id": s.delivery.id,
            "attempts": s.delivery.attempts, "last_error": s.last_error})
        for s in settled
        if s.status == DeliveryStatus.DEAD and s.delivery.medium != DeliveryMedium.WEBHOOK
    ]
    # The events continue the trace of the create whose delivery they report.
    traces = {s.delivery.notification_id: s.delivery.trace for s in settled
              if s.delivery.trace is not None}
    return (await enqueue_webhook_events(conn, WebhookEventType.DELIVERY_SENT, sent, now,
                                         traces)
            + await enqueue_webhook_events(conn, WebhookEventType.DELIVERY_DEAD, dead, now,
                                           traces))


async def statuses_changed(conn: AsyncConnection, changes: Sequence[StatusChange],
                           now: datetime) -> int:
    """`notification.delivered` and `notification.read` for status changes."""
    written = 0
    for status, event, when in (
        (Status.DELIVERED, WebhookEventType.NOTIFICATION_DELIVERED, "delivered_at"),
        (Status.READ, WebhookEventType.NOTIFICATION_READ, "read_at"),
    ):
        items = [
            (c.id, c.user_id, {"notification_id": c.id, "user_id": c.user_id,
                               "status": c.status, when: isoformat(getattr(c, when))})
            for c in changes if c.status == status
        ]
        written += await enqueue_webhook_events(conn, event, items, now)
    return written
