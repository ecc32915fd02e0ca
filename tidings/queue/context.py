"""What a batch of claimed deliveries needs from the database, read at once: their
notifications, the users' email addresses, phone numbers, Slack member ids, devices and
quiet hours, the devices a push retry already reached, the webhooks' endpoints and the
team feeds' URLs."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.crypto.cipher import FieldCipher
from tidings.domain import pacing
from tidings.domain.delivery import DeliveryMedium
from tidings.domain.feed import FEED_USER
from tidings.queue.batch import BatchContext
from tidings.store import contacts as contact_store
from tidings.store import devices as device_store
from tidings.store import feeds as feed_store
from tidings.store import notifications as notification_store
from tidings.store import queue as store
from tidings.store import webhooks as webhook_store
from tidings.store.database import Database
from tidings.store.queue import Claimed


async def load_context(db: Database, claimed: Sequence[Claimed], *,
                       cipher: FieldCipher | None, devices_per_user: int) -> BatchContext:
    """One transaction of reads for the whole batch; `cipher` opens the parts sealed at
    rest (for the message bodies), `devices_per_user` bounds one push's requests."""
    push = [c.id for c in claimed if c.medium == DeliveryMedium.PUSH and c.attempts > 1]
    for_users = [c for c in claimed if c.medium != DeliveryMedium.WEBHOOK]
    users = sorted({c.user_id for c in for_users})
    async with db.begin() as conn:
        notes = await notification_store.get_many(
            conn, sorted({c.notification_id for c in for_users}), cipher=cipher)
        contacts = await contact_store.contact_of(conn, users)
        emailed = {c.user_id for c in claimed if c.medium == DeliveryMedium.EMAIL}
        texted = {c.user_id for c in claimed if c.medium == DeliveryMedium.SMS}
        chatted = {c.user_id for c in claimed if c.medium == DeliveryMedium.CHAT}
        fed = [n.channel for n in notes if n.user_id == FEED_USER]
        return BatchContext(
            notifications={n.id: n for n in notes},
            emails={user_id: contact.email for user_id, contact in contacts.items()
                    if contact.email and user_id in emailed},
            phones={user_id: contact.phone for user_id, contact in contacts.items()
                    if contact.phone and user_id in texted},
            devices=await device_store.active_devices(
                conn, [c.user_id for c in claimed if c.medium == DeliveryMedium.PUSH],
                devices_per_user),
            reached=await store.devices_reached(conn, push),
            webhooks=await webhook_store.webhook_targets(
                conn, [c.webhook_id for c in claimed if c.webhook_id]),
            locales={user_id: contact.locale for user_id, contact in contacts.items()
                     if contact.locale and user_id in emailed},
            slack_ids={user_id: contact.slack_user_id for user_id, contact in contacts.items()
                       if contact.slack_user_id and user_id in chatted},
            feeds=await feed_store.of_channels(conn, fed),
            quiet={user_id: quiet for user_id, contact in contacts.items()
                   if (quiet := pacing.quiet_of(contact.quiet_hours, contact.timezone))},
        )
