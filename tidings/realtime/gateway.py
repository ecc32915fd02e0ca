"""The Socket.IO edge: authenticates sockets, maps client events to service calls, and is
this node's `LocalSink` for the fan-out.

Handlers stay thin: parse the payload into a domain input, call one service method, shape
the acknowledgement. Every failure becomes an `error` event plus a failing ack; the
connection stays up. The protocol itself is the transport's business (`transport.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tidings.domain.errors import AuthenticationFailed, TidingsError, ValidationFailed
from tidings.domain.inputs import (
    ChannelList,
    MissedRequest,
    NotificationRef,
    PreferenceBatch,
    PreferenceInput,
)
from tidings.domain.model import Principal
from tidings.metrics import Metrics
from tidings.realtime.transport import ConnectionRefused, SocketTransport
from tidings.services.notifications import NOTIFICATION_EVENT, NotificationService
from tidings.services.preferences import PreferenceService
from tidings.services.subscriptions import SubscriptionService
from tidings.services.tokens import TokenService

log = logging.getLogger(__name__)

Ack = dict[str, Any]
Handler = Callable[[str, Principal, Any], Awaitable[Ack]]
M = TypeVar("M", bound=BaseModel)


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def _parse(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise ValidationFailed("the event payload must be a JSON object", field="payload")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "payload"
        raise ValidationFailed(f"{field}: {first['msg']}", field=field) from exc


class SocketGateway:
    def __init__(
        self,
        transport: SocketTransport,
        tokens: TokenService,
        notifications: NotificationService,
        preferences: PreferenceService,
        subscriptions: SubscriptionService,
        metrics: Metrics,
    ) -> None:
        self.transport = transport
        self._tokens = tokens
        self._notifications = notifications
        self._preferences = preferences
        self._subscriptions = subscriptions
        self._metrics = metrics
        self._principals: dict[str, Principal] = {}
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

    # -- LocalSink ------------------------------------------------------------------------

    async def emit_to_user(self, user_id: str, event: str, payload: Mapping[str, Any]) -> int:
        sent = await self.transport.send(self.transport.members(user_room(user_id)), event,
                                         payload)
        if event == NOTIFICATION_EVENT:
            self._metrics.in_app_deliveries.inc(sent)
        return sent

    async def emit_to_channel(
        self,
        channel: str,
        event: str,
        payload: Mapping[str, Any],
        copies: Mapping[str, Mapping[str, Any]],
    ) -> int:
        """Each subscriber's sockets get that subscriber's own copy.

        The contract's room `channel:<name>` is the set of sockets of the channel's
        subscribers: a subscription belongs to the user (it persists, and every socket of
        the user follows it). That set is reached through the user rooms, with the ids of
        the copies at hand, instead of a second per-socket membership that every connect
        would have to rebuild from the database."""
        sent = 0
        for user_id, copy in copies.items():
            sids = self.transport.members(user_room(user_id))
            if sids:
                sent += await self.transport.send(sids, event, {**payload, **copy})
        if event == NOTIFICATION_EVENT:
            self._metrics.in_app_deliveries.inc(sent)
        return sent

    # -- connection life cycle ------------------------------------------------------------

    async def _on_connect(self, sid: str, auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = self._tokens.verify(token)
        except AuthenticationFailed as exc:
            raise ConnectionRefused("Authentication failed") from exc
        self._principals[sid] = principal
        await self.transport.join(sid, user_room(principal.user_id))
        self._metrics.connections.inc()

    async def _on_connected(self, sid: str) -> None:
        principal = self._principals.get(sid)
        if principal is not None:
            await self.transport.send(
                [sid], "connectionStatus", {"status": "connected", "user_id": principal.user_id}
            )

    async def _on_disconnect(self, sid: str) -> None:
        if self._principals.pop(sid, None) is not None:
            self._metrics.connections.dec()

    async def _on_event(self, sid: str, event: str, args: list[Any]) -> Ack:
        principal = self._principals.get(sid)
        handler = self._handlers.get(event)
        try:
            if principal is None:  # pragma: no cover - transports only pass connected sids
                raise ValidationFailed("connect first")
            if handler is None:
                return await self._fail(sid, {"code": "unknown_event",
                                              "message": f"unknown event '{event}'"})
            return await handler(sid, principal, args[0] if args else None)
        except TidingsError as exc:
            return await self._fail(sid, exc.to_dict())
        except Exception:
            log.exception("event %s failed", event)
            return await self._fail(sid, {"code": "internal_error",
                                          "message": "the server could not do that"})

    async def _fail(self, sid: str, error: dict[str, str]) -> Ack:
        self._metrics.client_errors.labels(code=error["code"]).inc()
        await self.transport.send([sid], "error", error)
        return {"ok": False, "error": error}

    # -- client events --------------------------------------------------------------------

    async def _subscribe(self, sid: str, principal: Principal, data: Any) -> Ack:
        request = _parse(ChannelList, data)
        result = await self._subscriptions.subscribe(principal.user_id, request.channels)
        return {"ok": True, "subscribed": result.subscribed, "denied": result.denied}

    async def _unsubscribe(self, sid: str, principal: Principal, data: Any) -> Ack:
        request = _parse(ChannelList, data)
        removed = await self._subscriptions.unsubscribe(principal.user_id, request.channels)
        return {"ok": True, "unsubscribed": removed}

    async def _ack(self, sid: str, principal: Principal, data: Any) -> Ack:
        ref = _parse(NotificationRef, data)
        notification = await self._notifications.acknowledge(principal, ref.id)
        return {"ok": True, "notification": notification}

    async def _mark_as_read(self, sid: str, principal: Principal, data: Any) -> Ack:
        ref = _parse(NotificationRef, data)
        notification = await self._notifications.mark_read(principal, ref.id)
        return {"ok": True, "notification": notification}

    async def _update_preferences(self, sid: str, principal: Principal, data: Any) -> Ack:
        if isinstance(data, dict) and "items" in data:
            items = _parse(PreferenceBatch, data).items
        else:
            items = [_parse(PreferenceInput, data)]
        stored = await self._preferences.save(principal.user_id, items)
        return {"ok": True, "items": stored}

    async def _request_missed(self, sid: str, principal: Principal, data: Any) -> Ack:
        request = _parse(MissedRequest, data)
        count = 0
        async for chunk in self._notifications.missed(principal, request.since):
            for notification in chunk:
                await self.transport.send([sid], NOTIFICATION_EVENT, notification)
            count += len(chunk)
        return {"ok": True, "count": count}
