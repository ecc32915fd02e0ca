"""What a node reads from Redis: the confirmations of its own subscriptions, and the
messages, handed to the node's sockets.

Reading never blocks the reader: what a reader gets goes into a bounded buffer drained by
another task; when the buffer is full the message is dropped and counted
(`tidings_fanout_dropped_total`); replay covers it, as for any socket that was away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from tidings.domain.notification import InboxChange, Notification, StatusChange
from tidings.realtime.catchup import Recent
from tidings.realtime.redis import messages as wire
from tidings.realtime.redis.shard import Received, Shard, TopologyChanged
from tidings.services.fanout import FanoutHandler
from tidings.services.fanout_reads import FanoutReads
from tidings.support.metrics import Metrics

log = logging.getLogger(__name__)

DRAIN_BATCH = 500


class Inbound:
    """The receiving end of a node's subscriptions; `holds` says whether a user has a
    socket on this node (messages of others are not emitted)."""

    def __init__(self, reads: FanoutReads, metrics: Metrics, recent: Recent,
                 holds: Callable[[str], bool], *, node_id: str, buffer_size: int) -> None:
        self._reads = reads  # a notification Redis carried by reference is read back
        self._metrics = metrics
        self._recent = recent
        self._holds = holds
        self._node_id = node_id
        self.handler: FanoutHandler | None = None
        self._confirm: dict[str, asyncio.Future[None]] = {}
        self._buffer: asyncio.Queue[Received] = asyncio.Queue(buffer_size)

    # -- confirmations ----------------------------------------------------------------------

    def expect(self, channels: Sequence[str]) -> list[asyncio.Future[None]]:
        """Futures resolved when Redis confirms each channel's subscription (one shared
        future per channel, whoever asked first)."""
        loop = asyncio.get_running_loop()
        return [self._confirm.setdefault(channel, loop.create_future())
                for channel in channels]

    def forget(self, channels: Sequence[str]) -> None:
        for channel in channels:
            self._confirm.pop(channel, None)

    def pending(self, channel: str) -> asyncio.Future[None] | None:
        """The confirmation someone waits for on `channel`, if any."""
        return self._confirm.get(channel)

    # -- reading ----------------------------------------------------------------------------

    async def read(self, shard: Shard) -> None:
        """Reads one subscriber connection until it fails (raising), or until the server
        drops one of its subscriptions (a cluster's slot moved: the links reopen)."""
        while True:
            received = await shard.read()
            if received is None:
                continue
            if received.dropped:
                raise TopologyChanged(f"Redis dropped the subscription of {received.channel}")
            if received.confirmed:
                future = self._confirm.get(received.channel)
                if future is not None and not future.done():
                    future.set_result(None)
                continue
            self._metrics.fanout_received.labels(channel="user").inc()
            try:
                self._buffer.put_nowait(received)
            except asyncio.QueueFull:
                self._metrics.fanout_dropped.inc()

    async def drain(self) -> None:
        while True:
            first = await self._buffer.get()
            batch = [first]
            while not self._buffer.empty() and len(batch) < DRAIN_BATCH:
                batch.append(self._buffer.get_nowait())
            try:
                await self._dispatch(batch)
            except Exception:
                log.exception("a fan-out message could not be emitted")

    async def _dispatch(self, batch: Sequence[Received]) -> None:
        notes: list[Notification] = []
        for received in batch:
            envelope = wire.decode(received.data)
            if envelope is None:
                self._metrics.fanout_dropped.inc()
                continue
            if envelope.origin == self._node_id:
                continue  # delivered locally already
            message = envelope.message
            if isinstance(message, Notification):
                notes.append(message)
            elif isinstance(message, wire.NotificationRef):
                notes += await self._load(message)
            else:
                await self.flush(notes)
                notes = []
                await self._control(message)
        await self.flush(notes)

    async def flush(self, notes: Sequence[Notification]) -> None:
        """Emit to this node's sockets what they have not had yet."""
        if notes and self.handler is not None:
            fresh = self._recent.fresh_notifications(
                [note for note in notes if self._holds(note.user_id)])
            if fresh:
                await self.handler.deliver(fresh)

    async def _control(self, message: wire.Message) -> None:
        if isinstance(message, StatusChange):
            if self.handler is not None and self._recent.fresh_status(message):
                await self.handler.status_changed(message)
        elif isinstance(message, InboxChange):
            if self.handler is not None:
                await self.handler.inbox_changed(message)

    async def _load(self, ref: wire.NotificationRef) -> list[Notification]:
        if not self._holds(ref.user_id):
            return []
        return await self._reads.notifications([ref.id])
