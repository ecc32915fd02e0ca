"""Which users' channels a node listens to: a user's channel is subscribed when the user's
first socket arrives (`watch`, confirmed by Redis before the socket hears
`connectionStatus`, so the client's replay covers everything committed before) and left
`linger_s` after the last one goes (`unwatch`), so that a reload does not churn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from tidings.realtime.background import Background
from tidings.realtime.redis.inbound import Inbound
from tidings.realtime.redis.links import Links
from tidings.realtime.redis.shard import Failure, Shard

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_S = 1.0


class Presence:
    def __init__(self, links: Links, inbound: Inbound, background: Background, *,
                 user_channel: Callable[[str], str], is_up: Callable[[], bool],
                 linger_s: float) -> None:
        self._links = links
        self._inbound = inbound
        self._background = background
        self._user_channel = user_channel
        self._is_up = is_up
        self._linger_s = linger_s
        self.sockets: dict[str, int] = {}  # user -> sockets on this node
        self.subscribed: set[str] = set()  # users whose channel is subscribed
        self._leaving: dict[str, asyncio.TimerHandle] = {}
        # Subscribe and unsubscribe commands go out one at a time, so that a user who comes
        # back during the linger is never left unsubscribed by a late UNSUBSCRIBE.
        self._commands_lock = asyncio.Lock()

    def holds(self, user_id: str) -> bool:
        """Whether a socket of `user_id` is on this node."""
        return user_id in self.sockets

    async def watch(self, user_id: str) -> None:
        """A socket of `user_id` arrived. Returns once its channel is subscribed (at most
        CONFIRM_TIMEOUT_S; a Redis that is down is covered by polling). Never raises."""
        self.sockets[user_id] = self.sockets.get(user_id, 0) + 1
        timer = self._leaving.pop(user_id, None)
        if timer is not None:
            timer.cancel()
        if not self._is_up():
            return
        if user_id in self.subscribed:
            # Another socket of the user may still wait for the confirmation.
            pending = self._inbound.pending(self._user_channel(user_id))
            if pending is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(pending), CONFIRM_TIMEOUT_S)
            return
        self.subscribed.add(user_id)
        try:
            await self.subscribe_confirmed([user_id])
        except Failure as exc:
            log.warning("subscribing a user's channel failed (%s)", type(exc).__name__)

    def unwatch(self, user_id: str) -> None:
        """A socket of `user_id` left; the channel goes `linger_s` after the last one."""
        count = self.sockets.get(user_id, 0) - 1
        if count > 0:
            self.sockets[user_id] = count
            return
        self.sockets.pop(user_id, None)
        loop = asyncio.get_running_loop()
        self._leaving[user_id] = loop.call_later(self._linger_s, self._leave, user_id)

    def cancel_lingers(self) -> None:
        for timer in self._leaving.values():
            timer.cancel()
        self._leaving.clear()

    def _leave(self, user_id: str) -> None:
        self._leaving.pop(user_id, None)
        if user_id in self.sockets or user_id not in self.subscribed:
            return
        self.subscribed.discard(user_id)
        if self._is_up():
            self._background.spawn(self._unsubscribe(user_id), "tidings-redis-unsubscribe")

    async def _unsubscribe(self, user_id: str) -> None:
        async with self._commands_lock:
            if user_id in self.subscribed or not self._is_up():
                return  # back meanwhile, or Redis gone (no subscription to drop)
            channel = self._user_channel(user_id)
            with contextlib.suppress(*Failure):
                await self._links.shard_of(channel).unsubscribe([channel])

    async def subscribe_confirmed(self, users: Sequence[str], *,
                                  extra: Sequence[str] = ()) -> None:
        """Subscribe, and wait until Redis confirms every channel."""
        channels = [*extra, *(self._user_channel(user) for user in users)]
        if not channels:
            return
        waits = self._inbound.expect(channels)
        by_shard: dict[int, tuple[Shard, list[str]]] = {}
        for channel in channels:
            shard = self._links.shard_of(channel)
            by_shard.setdefault(id(shard), (shard, []))[1].append(channel)
        try:
            async with self._commands_lock:
                for shard, names in by_shard.values():
                    await shard.subscribe(names)
            # One by one, in the order Redis confirms them on a connection: most are done
            # by the time they are looked at, so 100,000 channels (a resubscribe) cost no
            # gather over 100,000 futures, and the timeout bounds a silence, not the whole.
            for wait in waits:
                if not wait.done():
                    await asyncio.wait_for(asyncio.shield(wait), CONFIRM_TIMEOUT_S)
        finally:
            self._inbound.forget(channels)
