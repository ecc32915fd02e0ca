"""The Socket.IO edge: authenticates sockets, maps client events to service calls, and is
this node's `LocalSink` for the fan-out.

Handlers stay thin: parse the payload into a domain input, call one service method, shape
the acknowledgement. Every failure becomes an `error` event plus a failing ack; the
connection stays up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import socketio
from engineio import packet as eio_packet
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
from tidings.services.notifications import NOTIFICATION_EVENT, NotificationService
from tidings.services.preferences import PreferenceService
from tidings.services.subscriptions import SubscriptionService
from tidings.services.tokens import TokenService
from tidings.settings import Settings

log = logging.getLogger(__name__)

Ack = dict[str, Any]
Handler = Callable[[str, Principal, Any], Awaitable[Ack]]


def event_packet(event: str, payload: Mapping[str, Any]) -> eio_packet.Packet:
    """A Socket.IO EVENT on namespace `/`, framed once and sent as is to every recipient.

    python-socketio's `emit` also scans the payload for binary parts and spawns one task
    per recipient; server payloads here are plain JSON, so both costs are skipped on the
    hot path.
    """
    text = json.dumps([event, payload], separators=(",", ":"), ensure_ascii=False)
    return eio_packet.Packet(eio_packet.MESSAGE, "2" + text)


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def channel_room(channel: str) -> str:
    return f"channel:{channel}"


M = TypeVar("M", bound=BaseModel)


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
        settings: Settings,
        tokens: TokenService,
        notifications: NotificationService,
        preferences: PreferenceService,
        subscriptions: SubscriptionService,
        metrics: Metrics,
    ) -> None:
        self._tokens = tokens
        self._notifications = notifications
        self._preferences = preferences
        self._subscriptions = subscriptions
        self._metrics = metrics
        self._principals: dict[str, Principal] = {}
        self._background: set[asyncio.Task[None]] = set()
        origins: str | list[str] | None = settings.cors_origins or None
        if settings.cors_origins == ["*"]:
            origins = "*"
        self.server = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=origins,
            max_http_buffer_size=settings.max_event_bytes,
            logger=False,
            engineio_logger=False,
            http_compression=False,
        )
        self._register()

    # -- LocalSink ------------------------------------------------------------------------

    async def emit_to_user(self, user_id: str, event: str, payload: Mapping[str, Any]) -> int:
        eio_sids = [eio_sid for _, eio_sid in
                    self.server.manager.get_participants("/", user_room(user_id))]
        if eio_sids:
            packet = event_packet(event, payload)
            for eio_sid in eio_sids:
                await self.server.eio.send_packet(eio_sid, packet)
            if event == NOTIFICATION_EVENT:
                self._metrics.in_app_deliveries.inc(len(eio_sids))
        return len(eio_sids)

    async def emit_to_channel(
        self,
        channel: str,
        event: str,
        payload: Mapping[str, Any],
        copies: Mapping[str, Mapping[str, Any]],
    ) -> int:
        sent = 0
        for sid, eio_sid in list(
            self.server.manager.get_participants("/", channel_room(channel))
        ):
            principal = self._principals.get(sid)
            copy = copies.get(principal.user_id) if principal else None
            if copy is not None:
                await self.server.eio.send_packet(eio_sid, event_packet(event, {**payload,
                                                                                 **copy}))
                sent += 1
        if event == NOTIFICATION_EVENT:
            self._metrics.in_app_deliveries.inc(sent)
        return sent

    # -- connection life cycle ------------------------------------------------------------

    def _register(self) -> None:
        self.server.on("connect", self._on_connect)
        self.server.on("disconnect", self._on_disconnect)
        self.server.on("*", self._on_unknown)
        events: dict[str, Handler] = {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "ack": self._ack,
            "markAsRead": self._mark_as_read,
            "updatePreferences": self._update_preferences,
            "requestMissedNotifications": self._request_missed,
        }
        for name, handler in events.items():
            self.server.on(name, self._guarded(name, handler))

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = self._tokens.verify(token)
        except AuthenticationFailed as exc:
            raise socketio.exceptions.ConnectionRefusedError("Authentication failed") from exc
        try:
            channels = await self._subscriptions.channels_of(principal.user_id)
        except TidingsError as exc:
            # The client's reconnection logic retries; better than a half-joined socket.
            raise socketio.exceptions.ConnectionRefusedError(exc.message) from exc
        self._principals[sid] = principal
        await self.server.enter_room(sid, user_room(principal.user_id))
        for channel in channels:
            await self.server.enter_room(sid, channel_room(channel))
        self._metrics.connections.inc()
        # The CONNECT packet goes out when this handler returns; greet right after it.
        self._spawn(self._greet(sid, principal))

    async def _greet(self, sid: str, principal: Principal) -> None:
        await asyncio.sleep(0)
        await self.server.emit(
            "connectionStatus", {"status": "connected", "user_id": principal.user_id}, to=sid
        )

    async def _on_disconnect(self, sid: str, *_reason: Any) -> None:
        if self._principals.pop(sid, None) is not None:
            self._metrics.connections.dec()

    async def _on_unknown(self, event: str, sid: str, *_args: Any) -> Ack:
        error = {"code": "unknown_event", "message": f"unknown event '{event}'"}
        await self._report(sid, error)
        return {"ok": False, "error": error}

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _guarded(self, name: str, handler: Handler) -> Callable[..., Awaitable[Ack]]:
        async def run(sid: str, data: Any = None, *_extra: Any) -> Ack:
            principal = self._principals.get(sid)
            if principal is None:  # pragma: no cover - python-socketio only calls connected sids
                return {"ok": False, "error": {"code": "not_connected", "message": "connect first"}}
            try:
                return await handler(sid, principal, data)
            except TidingsError as exc:
                error = exc.to_dict()
            except Exception:
                log.exception("event %s failed", name)
                error = {"code": "internal_error", "message": "the server could not do that"}
            await self._report(sid, error)
            return {"ok": False, "error": error}

        return run

    async def _report(self, sid: str, error: dict[str, str]) -> None:
        self._metrics.client_errors.labels(code=error["code"]).inc()
        await self.server.emit("error", error, to=sid)

    def _sockets_of(self, user_id: str) -> list[str]:
        return [sid for sid, _ in self.server.manager.get_participants("/", user_room(user_id))]

    # -- client events --------------------------------------------------------------------

    async def _subscribe(self, sid: str, principal: Principal, data: Any) -> Ack:
        request = _parse(ChannelList, data)
        result = await self._subscriptions.subscribe(principal.user_id, request.channels)
        # Every socket of the user joins: the subscription belongs to the user.
        for user_sid in self._sockets_of(principal.user_id):
            for channel in result.subscribed:
                await self.server.enter_room(user_sid, channel_room(channel))
        return {"ok": True, "subscribed": result.subscribed, "denied": result.denied}

    async def _unsubscribe(self, sid: str, principal: Principal, data: Any) -> Ack:
        request = _parse(ChannelList, data)
        removed = await self._subscriptions.unsubscribe(principal.user_id, request.channels)
        for user_sid in self._sockets_of(principal.user_id):
            for channel in removed:
                await self.server.leave_room(user_sid, channel_room(channel))
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
                await self.server.emit(NOTIFICATION_EVENT, notification, to=sid)
            count += len(chunk)
        return {"ok": True, "count": count}
