"""The fan-out of a single node: the publisher and the sockets share one process
(`services/fanout.py` says what a fan-out guarantees; `realtime/redis/` spans nodes)."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.domain.notification import InboxChange, Notification, StatusChange
from tidings.services.fanout import FanoutHandler


class NoHandlerAttached(RuntimeError):
    """A fan-out was used before the application attached its handler: a wiring bug."""


class InProcessFanout:
    """Single node: the publisher and the sockets share one process."""

    def __init__(self) -> None:
        self._handler: FanoutHandler | None = None

    def attach(self, handler: FanoutHandler) -> None:
        self._handler = handler

    def _local(self) -> FanoutHandler:
        if self._handler is None:
            raise NoHandlerAttached("the fan-out has no handler attached")
        return self._handler

    async def start(self) -> None:
        self._local()  # fail at start-up, not at the first notification

    async def close(self) -> None:
        return None

    async def notify(self, notifications: Sequence[Notification]) -> None:
        if notifications:
            await self._local().deliver(notifications)

    async def status_changed(self, change: StatusChange) -> None:
        await self._local().status_changed(change)

    async def inbox_changed(self, change: InboxChange) -> None:
        await self._local().inbox_changed(change)

    async def watch(self, user_id: str) -> None:
        return None  # every socket is in this process: nothing to listen for

    def unwatch(self, user_id: str) -> None:
        return None
