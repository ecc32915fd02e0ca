"""Push devices: registration on behalf of whom, the Web Push endpoint check, the cap on
devices per user (MAX_DEVICES_PER_USER), and the VAPID public key browsers subscribe
with."""

from __future__ import annotations

import logging

from tidings.config.settings import Settings
from tidings.delivery.push.router import public_vapid_key
from tidings.delivery.targets import check_target_url
from tidings.domain.device import DeviceInput, DeviceRecord, NewDevice, Registered
from tidings.domain.errors import Forbidden, NotFound, Unavailable
from tidings.domain.ids import is_uuid, uuid7
from tidings.domain.model import Principal, utcnow
from tidings.store import devices as store
from tidings.store.database import Database

log = logging.getLogger(__name__)


class DeviceService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._vapid_key: str | None = None

    async def register(self, caller: Principal, draft: DeviceInput) -> Registered:
        """Store the device for its owner (the caller, or the `user_id` a service or admin
        names). A known token or endpoint moves to this owner, enabled, with the new keys."""
        owner = self._owner(caller, draft.user_id)
        address = draft.address()
        keys = draft.subscription.keys if draft.subscription else None
        if keys is not None:
            # Checked now so a bad endpoint is a 422 to the browser that sent it, not a
            # dead delivery later; senders check again (a name can be re-pointed).
            await check_target_url(
                address,
                allow_private=self._settings.allow_private_targets,
                allowed_hosts=self._settings.webpush_allowed_hosts or None,
                field="subscription.endpoint",
            )
        device = NewDevice(uuid7(), owner, draft.platform, address,
                           keys.p256dh if keys else None, keys.auth if keys else None)
        now = utcnow()
        async with self._db.begin() as conn:
            registered = await store.register(conn, device, now)
            # The newest device is always kept: it is the one just registered.
            await store.disable_beyond(conn, owner, self._settings.max_devices_per_user, now)
        return registered

    async def of_user(self, caller: Principal) -> list[DeviceRecord]:
        async with self._db.begin() as conn:
            return await store.list_for_user(conn, caller.user_id)

    async def delete(self, caller: Principal, device_id: str) -> None:
        # Ids are UUIDs: anything else is no device (and never reaches the database).
        deleted = False
        if is_uuid(device_id):
            async with self._db.begin() as conn:
                deleted = await store.delete(conn, caller.user_id, device_id)
        if not deleted:
            raise NotFound("no such device")

    def vapid_public_key(self) -> str | None:
        """The key for `pushManager.subscribe`; None when Web Push is not configured (a
        state of this server that a page asks about, not a missing resource: a browser
        logs every 404 as an error)."""
        if self._vapid_key is None:
            try:
                self._vapid_key = public_vapid_key(self._settings)
            except (ValueError, TypeError) as exc:
                log.error("VAPID_PRIVATE_KEY cannot be read: %s", exc)
                raise Unavailable("Web Push is misconfigured on this server") from exc
        return self._vapid_key

    @staticmethod
    def _owner(caller: Principal, user_id: str | None) -> str:
        if user_id is None or user_id == caller.user_id:
            return caller.user_id
        if not caller.may_create:
            raise Forbidden("registering a device for another user needs the role "
                            "'service' or 'admin'", field="user_id")
        return user_id
