"""SQL for where the delivery workers reach users: email addresses and active devices."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.delivery.messages import Device, Platform
from tidings.store.tables import contacts, push_devices, webhooks

LOOKUP_SLICE = 500


async def emails_of(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, str]:
    users = sorted(set(user_ids))
    found: dict[str, str] = {}
    for start in range(0, len(users), LOOKUP_SLICE):
        result = await conn.execute(
            sa.select(contacts.c.user_id, contacts.c.email).where(
                contacts.c.user_id.in_(users[start:start + LOOKUP_SLICE]),
                contacts.c.email.is_not(None),
            )
        )
        found.update({user_id: email for user_id, email in result})
    return found


async def active_devices(
    conn: AsyncConnection, user_ids: Sequence[str]
) -> dict[str, list[Device]]:
    users = sorted(set(user_ids))
    found: dict[str, list[Device]] = {}
    for start in range(0, len(users), LOOKUP_SLICE):
        result = await conn.execute(
            sa.select(push_devices.c.user_id, push_devices.c.id, push_devices.c.platform,
                      push_devices.c.address, push_devices.c.p256dh, push_devices.c.auth)
            .where(push_devices.c.user_id.in_(users[start:start + LOOKUP_SLICE]),
                   push_devices.c.disabled_at.is_(None))
            .order_by(push_devices.c.created_at, push_devices.c.id)
        )
        for user_id, device_id, platform, address, p256dh, auth in result:
            kind = Platform(platform)
            web = kind is Platform.WEBPUSH
            found.setdefault(user_id, []).append(Device(
                id=device_id, platform=kind, token=None if web else address,
                endpoint=address if web else None, p256dh=p256dh, auth=auth,
            ))
    return found


async def disable_devices(
    conn: AsyncConnection, device_ids: Sequence[str], reason: str, now: datetime
) -> None:
    """The provider says these devices are gone: never send to them again."""
    if device_ids:
        await conn.execute(
            push_devices.update()
            .where(push_devices.c.id.in_(device_ids), push_devices.c.disabled_at.is_(None))
            .values(disabled_at=now, disabled_reason=reason[:255], updated_at=now)
        )


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
