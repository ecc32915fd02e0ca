"""The fan-out between nodes, over Redis pub/sub.

Routing: one channel per user, `{prefix}:u:{user_id}`. A node subscribes to a user's channel
when the first socket of that user arrives (`watch`, confirmed by Redis before the socket
hears `connectionStatus`, so the client's replay covers everything committed before) and
unsubscribes `linger_s` after the last one leaves (`unwatch`). A node therefore reads only
the messages of users it holds. `{prefix}:ctl` carries worker wake-ups and cache
invalidations to every process, `tidings worker` ones included.

Local delivery: a node emits to its own sockets directly, then publishes; it skips the echo
of its own publishes (each message names its origin). So its own sockets never depend on
Redis and nothing arrives twice.

Outage: a publish waits at most 250 ms; after a failure a breaker skips Redis for 1 s at a
time (the notification is committed already: HTTP still answers 201, replay has it). When
the subscriber connection breaks the node polls the database every SCHEDULER_INTERVAL for
the users it holds (`catchup.py`) and retries Redis; once back it resubscribes every held
user in batches, polls one last time to close the gap, and returns to Redis. `/ready` does
not depend on Redis; `tidings_redis_up` says whether it is there.

Receiving never blocks the reader: what the reader gets goes into a bounded buffer drained
by another task; when the buffer is full the message is dropped and counted
(`tidings_fanout_dropped_total`); replay covers it, as for any socket that was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

from redis.exceptions import RedisClusterException, RedisError

from tidings.crypto.cipher import FieldCipher
from tidings.domain.notification import Notification, StatusChange
from tidings.metrics import Metrics
from tidings.realtime import redis_messages as wire
from tidings.realtime.catchup import CatchUp, Recent
from tidings.realtime.fanout import FanoutHandler
from tidings.realtime.redis_links import Links, Received, Shard
from tidings.store import notifications as notification_store
from tidings.store.database import Database

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 0.25
BREAKER_S = 1.0
CONFIRM_TIMEOUT_S = 1.0
RECONNECT_S = 0.5
# Messages published just before an outage was noticed may never have arrived.
OUTAGE_LAG = timedelta(seconds=5)

# A subscriber connection that read nothing, not even the answer to its PING, for twice
# this long is taken for dead (a peer gone without closing the connection).
HEARTBEAT_S = 5.0

Failure = (RedisError, RedisClusterException, OSError, TimeoutError)


class RedisFanout:
    """Implements `Fanout` (and the presence hooks) over Redis; see the module docstring."""

    def __init__(self, links: Links, db: Database, metrics: Metrics, *, prefix: str,
                 max_event_bytes: int, poll_s: float, linger_s: float = 30.0,
                 buffer_size: int = 10_000, heartbeat_s: float = HEARTBEAT_S,
                 cipher: FieldCipher | None = None) -> None:
        self._links = links
        self._db = db
        self._cipher = cipher  # notifications read back from the database are opened
        self._metrics = metrics
        self._prefix = prefix
        self._max_bytes = max_event_bytes
        self._poll_s = poll_s
        self._linger_s = linger_s
        self._heartbeat_s = heartbeat_s
        self.node_id = uuid.uuid4().hex
        self._handler: FanoutHandler | None = None
        self._wake_listeners: list[Callable[[], None]] = []
        self._invalidate_listeners: list[Callable[[wire.Invalidate], None]] = []
        self._sockets: dict[str, int] = {}  # user -> sockets on this node
        self._subscribed: set[str] = set()  # users whose channel is subscribed
        self._leaving: dict[str, asyncio.TimerHandle] = {}
        self._confirm: dict[str, asyncio.Future[None]] = {}
        self._buffer: asyncio.Queue[Received] = asyncio.Queue(buffer_size)
        self._recent = Recent()
        self._catchup = CatchUp(db, self._recent, lambda: list(self._sockets), cipher=cipher)
        self._up = False
        self._breaker_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._readers: list[asyncio.Task[None]] = []
        self._first_attempt = asyncio.Event()
        # Subscribe and unsubscribe commands go out one at a time, so that a user who comes
        # back during the linger is never left unsubscribed by a late UNSUBSCRIBE.
        self._commands_lock = asyncio.Lock()
        self._closing = asyncio.Event()
        self._wake_pending = asyncio.Event()
        self.ctl_channel = f"{prefix}:ctl"
        metrics.redis_up.set(0)

    # -- wiring -----------------------------------------------------------------------------

    def attach(self, handler: FanoutHandler) -> None:
        self._handler = handler

    def on_wake(self, listener: Callable[[], None]) -> None:
        """`listener` runs when any process asks the delivery workers to look now."""
        self._wake_listeners.append(listener)

    def on_invalidate(self, listener: Callable[[wire.Invalidate], None]) -> None:
        """`listener` runs for every cache invalidation published by any node."""
        self._invalidate_listeners.append(listener)

    def user_channel(self, user_id: str) -> str:
        return f"{self._prefix}:u:{user_id}"

    @property
    def up(self) -> bool:
        return self._up

    @property
    def publishing(self) -> bool:
        """False while the breaker skips Redis after a failed publish."""
        return time.monotonic() >= self._breaker_until

    def subscribed_users(self) -> set[str]:
        """Users whose channel this node listens to (their sockets, and the linger)."""
        return set(self._subscribed)

    async def start(self) -> None:
        """Connects, waiting at most CONFIRM_TIMEOUT_S for it; a Redis that is down does
        not stop the node (it polls, and keeps trying)."""
        self._closing.clear()
        self._spawn(self._supervise(), "tidings-redis")
        self._spawn(self._drain(), "tidings-redis-drain")
        self._spawn(self._publish_wakes(), "tidings-redis-wake")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), CONFIRM_TIMEOUT_S)

    async def close(self) -> None:
        self._closing.set()
        for timer in self._leaving.values():
            timer.cancel()
        self._leaving.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, *Failure):
                await task
        with contextlib.suppress(*Failure):
            await self._links.close()
        self._set_up(False)

    # -- sending ----------------------------------------------------------------------------

    async def notify(self, notifications: Sequence[Notification]) -> None:
        if not notifications:
            return
        await self._deliver_locally(notifications)
        await self._publish([(self.user_channel(note.user_id),
                              wire.encode(self.node_id, note, self._max_bytes))
                             for note in notifications])

    async def status_changed(self, change: StatusChange) -> None:
        if self._handler is not None and self._recent.fresh_status(change):
            await self._handler.status_changed(change)
        await self._publish([(self.user_channel(change.user_id),
                              wire.encode(self.node_id, change, self._max_bytes))])

    def wake_workers(self) -> None:
        """Ask every delivery worker, in any process, to look at the queue now. Calls close
        together become one message."""
        self._wake_pending.set()

    async def invalidate(self, scope: str, key: str) -> None:
        """Every node (this one first) drops what it caches under `scope` for `key`."""
        message = wire.Invalidate(scope, key)
        self._tell_invalidate(message)
        await self._publish([(self.ctl_channel,
                              wire.encode(self.node_id, message, self._max_bytes))])

    async def _deliver_locally(self, notifications: Sequence[Notification]) -> None:
        if self._handler is None:
            return
        mine = [note for note in notifications if note.user_id in self._sockets]
        fresh = self._recent.fresh_notifications(mine)
        if fresh:
            await self._handler.deliver(fresh)

    async def _publish(self, messages: list[tuple[str, bytes]]) -> None:
        """One round trip per shard; on failure or while the breaker is open, nothing
        (the rows are committed: replay and the other nodes' polling cover it)."""
        if time.monotonic() < self._breaker_until:
            self._metrics.fanout_publish_skipped.inc(len(messages))
            return
        try:
            await asyncio.wait_for(self._links.publish(messages), PUBLISH_TIMEOUT_S)
        except Failure as exc:
            self._breaker_until = time.monotonic() + BREAKER_S
            self._metrics.fanout_publish_skipped.inc(len(messages))
            log.warning("publish to Redis failed (%s): skipping Redis for %.0f s",
                        type(exc).__name__, BREAKER_S)
            return
        self._metrics.fanout_published.inc(len(messages))

    async def _publish_wakes(self) -> None:
        while True:
            await self._wake_pending.wait()
            self._wake_pending.clear()
            await self._publish([(self.ctl_channel,
                                  wire.encode(self.node_id, wire.WorkersWake(),
                                              self._max_bytes))])

    # -- presence ---------------------------------------------------------------------------

    async def watch(self, user_id: str) -> None:
        """A socket of `user_id` arrived. Returns once its channel is subscribed (at most
        CONFIRM_TIMEOUT_S; a Redis that is down is covered by polling). Never raises."""
        self._sockets[user_id] = self._sockets.get(user_id, 0) + 1
        timer = self._leaving.pop(user_id, None)
        if timer is not None:
            timer.cancel()
        if not self._up:
            return
        if user_id in self._subscribed:
            # Another socket of the user may still wait for the confirmation.
            pending = self._confirm.get(self.user_channel(user_id))
            if pending is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(pending), CONFIRM_TIMEOUT_S)
            return
        self._subscribed.add(user_id)
        try:
            await self._subscribe_confirmed([user_id])
        except Failure as exc:
            log.warning("subscribing a user's channel failed (%s)", type(exc).__name__)

    def unwatch(self, user_id: str) -> None:
        """A socket of `user_id` left; the channel goes `linger_s` after the last one."""
        count = self._sockets.get(user_id, 0) - 1
        if count > 0:
            self._sockets[user_id] = count
            return
        self._sockets.pop(user_id, None)
        loop = asyncio.get_running_loop()
        self._leaving[user_id] = loop.call_later(self._linger_s, self._leave, user_id)

    def _leave(self, user_id: str) -> None:
        self._leaving.pop(user_id, None)
        if user_id in self._sockets or user_id not in self._subscribed:
            return
        self._subscribed.discard(user_id)
        if self._up:
            self._spawn(self._unsubscribe(user_id), "tidings-redis-unsubscribe")

    async def _unsubscribe(self, user_id: str) -> None:
        async with self._commands_lock:
            if user_id in self._subscribed or not self._up:
                return  # back meanwhile, or Redis gone (no subscription to drop)
            channel = self.user_channel(user_id)
            with contextlib.suppress(*Failure):
                await self._links.shard_of(channel).unsubscribe([channel])

    async def _subscribe_confirmed(self, users: Sequence[str], *,
                                   extra: Sequence[str] = ()) -> None:
        """Subscribe, and wait until Redis confirms every channel."""
        channels = [*extra, *(self.user_channel(user) for user in users)]
        if not channels:
            return
        loop = asyncio.get_running_loop()
        waits = [self._confirm.setdefault(channel, loop.create_future())
                 for channel in channels]
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
            for channel in channels:
                self._confirm.pop(channel, None)

    # -- receiving --------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Connected: read. Down: poll, and try again every RECONNECT_S."""
        poller: asyncio.Task[None] | None = None
        while not self._closing.is_set():
            try:
                await self._connect()
                self._set_up(True)
                self._first_attempt.set()
                # Sockets that arrived while this node was reconnecting.
                await self._subscribe_confirmed(
                    [user for user in self._sockets if user not in self._subscribed])
                self._subscribed.update(self._sockets)
                if poller is not None:
                    poller.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await poller
                    poller = None
                    await self._poll_once()  # the gap between the last poll and now
                await self._read_all()
            except Failure as exc:
                self._stop_readers()
                if self._up:
                    log.warning("Redis is unreachable (%s): polling the database",
                                type(exc).__name__)
                    self._catchup.rewind(OUTAGE_LAG)
                self._set_up(False)
                self._first_attempt.set()
                if poller is None:
                    poller = self._spawn(self._poll_while_down(), "tidings-redis-poll")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), RECONNECT_S)
        if poller is not None:
            poller.cancel()

    async def _connect(self) -> None:
        await self._links.open()
        self._readers = [self._spawn(self._read(shard), "tidings-redis-read")
                         for shard in self._links.shards()]
        users = list(self._sockets)
        self._subscribed = set(users)
        await self._subscribe_confirmed(users, extra=[self.ctl_channel])

    def _stop_readers(self) -> None:
        for task in self._readers:
            task.cancel()
        self._readers = []

    async def _read_all(self) -> None:
        """Returns (raising) when any subscriber connection fails or stops answering."""
        while True:
            done, _ = await asyncio.wait(self._readers, timeout=self._heartbeat_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled():
                    task.result()
            if done:
                raise ConnectionError("a subscriber connection ended")
            for shard in self._links.shards():
                if shard.silent_for() > 2 * self._heartbeat_s:
                    raise ConnectionError("a subscriber connection stopped answering")
                await asyncio.wait_for(shard.ping(), PUBLISH_TIMEOUT_S)

    async def _read(self, shard: Shard) -> None:
        while True:
            received = await shard.read()
            if received is None:
                continue
            if received.confirmed:
                future = self._confirm.get(received.channel)
                if future is not None and not future.done():
                    future.set_result(None)
                continue
            kind = "control" if received.channel == self.ctl_channel else "user"
            self._metrics.fanout_received.labels(channel=kind).inc()
            try:
                self._buffer.put_nowait(received)
            except asyncio.QueueFull:
                self._metrics.fanout_dropped.inc()

    async def _drain(self) -> None:
        while True:
            first = await self._buffer.get()
            batch = [first]
            while not self._buffer.empty() and len(batch) < 500:
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
            if envelope.origin == self.node_id:
                continue  # delivered locally already
            message = envelope.message
            if isinstance(message, Notification):
                notes.append(message)
            elif isinstance(message, wire.NotificationRef):
                notes += await self._load(message)
            else:
                await self._flush(notes)
                notes = []
                await self._control(message)
        await self._flush(notes)

    async def _flush(self, notes: Sequence[Notification]) -> None:
        if notes and self._handler is not None:
            fresh = self._recent.fresh_notifications(
                [note for note in notes if note.user_id in self._sockets])
            if fresh:
                await self._handler.deliver(fresh)

    async def _control(self, message: wire.Message) -> None:
        if isinstance(message, StatusChange):
            if self._handler is not None and self._recent.fresh_status(message):
                await self._handler.status_changed(message)
        elif isinstance(message, wire.WorkersWake):
            for listener in self._wake_listeners:
                listener()
        elif isinstance(message, wire.Invalidate):
            self._tell_invalidate(message)

    def _tell_invalidate(self, message: wire.Invalidate) -> None:
        for listener in self._invalidate_listeners:
            listener(message)

    async def _load(self, ref: wire.NotificationRef) -> list[Notification]:
        if ref.user_id not in self._sockets:
            return []
        async with self._db.begin() as conn:
            found = await notification_store.get_many(conn, [ref.id], cipher=self._cipher)
            return await notification_store.with_deliveries(conn, found)

    # -- outage -----------------------------------------------------------------------------

    async def _poll_while_down(self) -> None:
        while True:
            await self._poll_once()
            await asyncio.sleep(self._poll_s)

    async def _poll_once(self) -> None:
        if self._handler is None:
            return
        try:
            await self._catchup.poll(self._handler)
        except Exception:
            log.exception("polling the database for live events failed")

    # -- helpers ----------------------------------------------------------------------------

    def _set_up(self, up: bool) -> None:
        self._up = up
        self._metrics.redis_up.set(1 if up else 0)

    def _spawn(self, coro: object, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
