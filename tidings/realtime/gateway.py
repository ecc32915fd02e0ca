"""The Socket.IO edge: authenticates sockets, maps client events to service calls, and is
this node's `FanoutHandler`: it turns what the fan-out carries into Socket.IO events.

Handlers stay thin: parse the payload into a domain input, call one service method, shape
the acknowledgement. Every failure becomes an `error` event plus a failing ack; the
connection stays up. The protocol itself is the transport's business (`transport.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tidings.domain.broadcast import EVERYONE
from tidings.domain.errors import (
    AuthenticationFailed,
    TidingsError,
    TooManyConnections,
    ValidationFailed,
    error_body,
)
from tidings.domain.inputs import (
    ChannelList,
    MissedRequest,
    NotificationRef,
    PreferenceBatch,
    PreferenceInput,
    parse,
)
from tidings.domain.model import Principal
from tidings.domain.notification import InboxChange, Notification, StatusChange
from tidings.realtime.census import SocketCounts
from tidings.realtime.transport import ConnectionRefused, SocketTransport
from tidings.services.fanout import Fanout
from tidings.services.inbox import InboxService
from tidings.services.preferences import PreferenceService
from tidings.services.rate_limits import RateLimits
from tidings.services.subscriptions import SubscriptionService
from tidings.services.tokens import TokenService
from tidings.support.metrics import Metrics

log = logging.getLogger(__name__)

# Server-to-client event names of the contract (section 6).
NOTIFICATION = "notification"
NOTIFICATION_STATUS = "notificationStatus"
INBOX_CHANGED = "inboxChanged"
CONNECTION_STATUS = "connectionStatus"
ERROR = "error"

Ack = dict[str, Any]
Handler = Callable[[str, Principal, Any], Awaitable[Ack]]


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


class SocketGateway:
    """Owns this node's sockets: who each one is (its principal), the client events of the
    contract, and the emits of what the fan-out delivers here."""

    def __init__(
        self,
        transport: SocketTransport,
        tokens: TokenService,
        inbox: InboxService,
        preferences: PreferenceService,
        subscriptions: SubscriptionService,
        metrics: Metrics,
        limits: RateLimits,
        presence: Fanout | None = None,
    ) -> None:
        self.transport = transport
        # Told who connects and leaves, so a fan-out between nodes listens for them.
        self._presence = presence
        self._tokens = tokens
        self._inbox = inbox
        self._preferences = preferences
        self._subscriptions = subscriptions
        self._metrics = metrics
        self._limits = limits
        self._principals: dict[str, Principal] = {}
        self.counts = SocketCounts()  # who is here, for operators (`census.py`)
        # A socket lives no longer than its token: one timer per socket closes it at `exp`.
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._handlers: dict[str, Handler] = {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "ack": self._ack,
            "markAsRead": self._mark_as_read,
            "updatePreferences": self._update_preferences,
            "requestMissedNotifications": self._request_missed,
        }
        transport.bind(self._on_connect, self._on_connected, self._on_disconnect,
                       self._on_event)

    # -- FanoutHandler --------------------------------------------------------------------

    async def deliver(self, notifications: Sequence[Notification]) -> None:
        """Each notification to its own user's sockets on this node.

        The contract's room `channel:<name>` is the set of sockets of the channel's
        subscribers: a subscription belongs to the user (it persists, and every socket of
        the user follows it). A channel notification arrives as one stored copy per
        subscriber, so it reaches that set through the user rooms, without a second
        per-socket membership that every connect would have to rebuild from the database.
        """
        sent = 0
        for notification in notifications:
            if notification.user_id == EVERYONE:  # a broadcast: every socket here
                sids = list(self._principals)
            else:
                sids = self.transport.members(user_room(notification.user_id))
            if sids:
                # The record, not its value: a single create's record has its JSON written
                # already, for this event and its HTTP answer alike.
                sent += await self.transport.send_record(sids, NOTIFICATION, notification)
        self._metrics.in_app_deliveries.inc(sent)
        if notifications:
            since = notifications[0].visible_at.timestamp()
            self._metrics.create_to_emit.observe(max(0.0, time.time() - since))

    async def status_changed(self, change: StatusChange) -> None:
        sids = self.transport.members(user_room(change.user_id))
        if sids:
            await self.transport.send(sids, NOTIFICATION_STATUS, change.to_json())

    async def inbox_changed(self, change: InboxChange) -> None:
        sids = self.transport.members(user_room(change.user_id))
        if sids:
            await self.transport.send(sids, INBOX_CHANGED, change.to_json())

    # -- connection life cycle ------------------------------------------------------------

    async def _on_connect(self, sid: str, auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = self._tokens.verify(token)
        except AuthenticationFailed as exc:
            raise ConnectionRefused("Authentication failed") from exc
        try:
            self._limits.sockets.admit(len(self.transport.members(user_room(principal.user_id))))
        except TooManyConnections as exc:
            raise ConnectionRefused(exc.message) from exc
        self._principals[sid] = principal
        await self.transport.join(sid, user_room(principal.user_id))
        self._metrics.connections.inc()
        self.counts.arrived(principal.user_id)
        if principal.expires_at is not None:
            loop = asyncio.get_running_loop()
            when = loop.time() + (principal.expires_at - time.time())
            self._expiry[sid] = loop.call_at(when, self._expire, sid)
        if self._presence is not None:
            # Before `connectionStatus`: the client's replay, which it sends on that event,
            # then covers everything that was not published to this node live.
            await self._presence.watch(principal.user_id)

    def _expire(self, sid: str) -> None:
        task = asyncio.ensure_future(self._close_expired(sid))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_expired(self, sid: str) -> None:
        """The token of this socket has expired: it hears why, then is disconnected. The
        client reconnects with a fresh token and replays what it missed meanwhile."""
        if sid in self._principals:
            await self.transport.send([sid], ERROR, error_body(
                "token_expired", "the token has expired: reconnect with a new one"))
            await self.transport.disconnect(sid)

    async def _on_connected(self, sid: str) -> None:
        principal = self._principals.get(sid)
        if principal is not None:
            await self.transport.send(
                [sid], CONNECTION_STATUS, {"status": "connected", "user_id": principal.user_id}
            )

    async def _on_disconnect(self, sid: str) -> None:
        timer = self._expiry.pop(sid, None)
        if timer is not None:
            timer.cancel()
        self._limits.events.forget(sid)
        principal = self._principals.pop(sid, None)
        if principal is not None:
            if self._presence is not None:
                self._presence.unwatch(principal.user_id)
            self._metrics.connections.dec()
            self.counts.left(principal.user_id)
            self._metrics.disconnects.inc()

    async def _on_event(self, sid: str, event: str, args: list[Any]) -> Ack:
        principal = self._principals.get(sid)
        handler = self._handlers.get(event)
        try:
            if principal is None:  # pragma: no cover - transports only pass connected sids
                raise ValidationFailed("connect first")
            self._limits.events.spend(sid)
            if handler is None:
                return await self._fail(sid, error_body("unknown_event",
                                                        f"unknown event '{event}'"))
            return await handler(sid, principal, args[0] if args else None)
        except TidingsError as exc:
            return await self._fail(sid, exc.body())
        except Exception:
            log.exception("event %s failed", event)
            return await self._fail(sid, error_body("internal_error",
                                                    "the server could not do that"))

    async def _fail(self, sid: str, error: dict[str, Any]) -> Ack:
        self._metrics.client_errors.labels(code=error["code"]).inc()
        await self.transport.send([sid], ERROR, error)
        return {"ok": False, "error": error}

    # -- client events --------------------------------------------------------------------

    async def _subscribe(self, sid: str, principal: Principal, data: Any) -> Ack:
        request = parse(ChannelList, data)
        result = await self._subscriptions.subscribe(principal.user_id, request.channels,
                                                     principal.roles)
        return {"ok": True, "subscribed": result.subscribed, "denied": result.denied}

    async def _unsubscribe(self, sid: str, principal: Principal, data: Any) -> Ack:
        request = parse(ChannelList, data)
        removed = await self._subscriptions.unsubscribe(principal.user_id, request.channels)
        return {"ok": True, "unsubscribed": removed}

    async def _ack(self, sid: str, principal: Principal, data: Any) -> Ack:
        ref = parse(NotificationRef, data)
        notification = await self._inbox.acknowledge(principal, ref.id)
        return {"ok": True, "notification": notification.to_json()}

    async def _mark_as_read(self, sid: str, principal: Principal, data: Any) -> Ack:
        ref = parse(NotificationRef, data)
        notification = await self._inbox.mark_read(principal, ref.id)
        return {"ok": True, "notification": notification.to_json()}

    async def _update_preferences(self, sid: str, principal: Principal, data: Any) -> Ack:
        if isinstance(data, dict) and "items" in data:
            items = parse(PreferenceBatch, data).items
        else:
            items = [parse(PreferenceInput, data)]
        stored = await self._preferences.save(principal.user_id, items)
        return {"ok": True, "items": [item.to_json() for item in stored]}

    async def _request_missed(self, sid: str, principal: Principal, data: Any) -> Ack:
        request = parse(MissedRequest, data)
        count = 0
        async for chunk in self._inbox.missed(principal, request.since):
            if sid not in self._principals:
                break  # the socket is gone: read no more of the history
            for notification in chunk:
                await self.transport.send_record([sid], NOTIFICATION, notification)
            count += len(chunk)
        return {"ok": True, "count": count}
