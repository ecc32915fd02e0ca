"""The fan-out between nodes, over Redis pub/sub.

Routing: one channel per user, `{prefix}:u:{user_id}`. A node subscribes to a user's channel
while it holds a socket of that user, and a little longer (`presence.py`), so a node
reads only the messages of users it holds. (Worker wake-ups have connections of their own:
`tidings/wakeup/redis.py`.)

Local delivery: a node emits to its own sockets directly, then publishes; it skips the echo
of its own publishes (each message names its origin). So its own sockets never depend on
Redis and nothing arrives twice.

Outage: a publish waits at most 250 ms; after a failure a breaker skips Redis for 1 s at a
time (the notification is committed already: HTTP still answers 201). What a failed,
timed-out or skipped publish carried is not lost: it waits in a bounded backlog and is
published again, in order, as soon as Redis answers (`retry.py`); a message may thus
arrive twice, and receivers emit each notification id once (`Recent`). When
the subscriber connections break the node polls the database for the users it holds until
Redis is back (`supervisor.py`); a Sentinel failover or a cluster's slot move goes
the same way, the links then reopening where the master or the slot now is
(`links.py`, `cluster_links.py`). `/ready` does not depend on Redis;
`tidings_redis_up` says whether it is there.

Receiving (`inbound.py`) never blocks the reader: a full receive buffer drops and
counts (`tidings_fanout_dropped_total`); replay covers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence

from tidings.domain.broadcast import EVERYONE
from tidings.domain.notification import InboxChange, Notification, StatusChange
from tidings.realtime.background import Background
from tidings.realtime.catchup import CatchUp, Recent
from tidings.realtime.redis import messages as wire
from tidings.realtime.redis.inbound import Inbound
from tidings.realtime.redis.links import Links
from tidings.realtime.redis.presence import CONFIRM_TIMEOUT_S, Presence
from tidings.realtime.redis.retry import Backlog
from tidings.realtime.redis.shard import Failure
from tidings.realtime.redis.supervisor import Supervisor
from tidings.services.fanout import FanoutHandler
from tidings.services.fanout_reads import FanoutReads
from tidings.support.metrics import Metrics

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 0.25
BREAKER_S = 1.0

# A subscriber connection that read nothing, not even the answer to its PING, for twice
# this long is taken for dead (a peer gone without closing the connection).
HEARTBEAT_S = 5.0


class RedisFanout:
    """Implements `Fanout` (and the presence hooks) over Redis; see the module docstring."""

    def __init__(self, links: Links, reads: FanoutReads, metrics: Metrics, *, prefix: str,
                 max_event_bytes: int, poll_s: float, linger_s: float = 30.0,
                 buffer_size: int = 10_000, heartbeat_s: float = HEARTBEAT_S,
                 backlog: Backlog | None = None) -> None:
        self._links = links
        self._metrics = metrics
        self._prefix = prefix
        self._max_bytes = max_event_bytes
        self.node_id = uuid.uuid4().hex
        self._breaker_until = 0.0
        self._backlog = backlog if backlog is not None else Backlog()
        self._overflowing = False  # the backlog refused messages since it was last empty
        self._background = Background()
        self._recent = Recent()
        self._inbound = Inbound(reads, metrics, self._recent, self._holds,
                                node_id=self.node_id, buffer_size=buffer_size)
        self._presence = Presence(links, self._inbound, self._background,
                                  user_channel=self.user_channel,
                                  is_up=lambda: self._supervisor.up, linger_s=linger_s)
        catchup = CatchUp(reads, self._recent, lambda: list(self._presence.sockets))
        self._supervisor = Supervisor(links, self._presence, self._inbound, catchup, metrics,
                                      self._background,
                                      own_channel=f"{prefix}:node:{self.node_id}",
                                      poll_s=poll_s, heartbeat_s=heartbeat_s)

    # -- wiring -----------------------------------------------------------------------------

    def attach(self, handler: FanoutHandler) -> None:
        self._inbound.handler = handler

    def user_channel(self, user_id: str) -> str:
        return f"{self._prefix}:u:{user_id}"

    @property
    def up(self) -> bool:
        return self._supervisor.up

    @property
    def publishing(self) -> bool:
        """False while the breaker skips Redis after a failed publish."""
        return time.monotonic() >= self._breaker_until

    def subscribed_users(self) -> set[str]:
        """Users whose channel this node listens to (their sockets, and the linger); the
        broadcasts' channel, which every node holds while it runs, is not a user's."""
        return set(self._presence.subscribed) - {EVERYONE}

    async def start(self) -> None:
        """Connects, waiting at most CONFIRM_TIMEOUT_S for it; a Redis that is down does
        not stop the node (it polls, and keeps trying)."""
        self._supervisor.closing.clear()
        self._background.spawn(self._supervisor.run(), "tidings-redis")
        self._background.spawn(self._inbound.drain(), "tidings-redis-drain")
        self._background.spawn(self._retry(), "tidings-redis-retry")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._supervisor.first_attempt.wait(), CONFIRM_TIMEOUT_S)
        # Every node holds sockets of a broadcast's audience (everyone): it listens to that
        # channel for as long as it runs, and its catch-up poll covers broadcasts too.
        await self._presence.watch(EVERYONE)

    async def close(self) -> None:
        self._supervisor.closing.set()
        self._presence.cancel_lingers()
        if self._backlog:
            # One last try, breaker or not, bounded by PUBLISH_TIMEOUT_S: what still
            # waits after it is left to the clients' replay.
            await self._republish()
        await self._background.cancel_all(*Failure)
        with contextlib.suppress(*Failure):
            await self._links.close()
        self._supervisor.set_up(False)

    # -- sending ----------------------------------------------------------------------------

    async def notify(self, notifications: Sequence[Notification]) -> None:
        if not notifications:
            return
        await self._inbound.flush(notifications)  # this node's sockets, directly
        await self._publish([(self.user_channel(note.user_id),
                              wire.encode(self.node_id, note, self._max_bytes))
                             for note in notifications])

    async def status_changed(self, change: StatusChange) -> None:
        handler = self._inbound.handler
        if handler is not None and self._recent.fresh_status(change):
            await handler.status_changed(change)
        await self._publish([(self.user_channel(change.user_id),
                              wire.encode(self.node_id, change, self._max_bytes))])

    async def inbox_changed(self, change: InboxChange) -> None:
        # No de-duplication as for statuses: the database poll that covers a Redis outage
        # does not see inbox changes (a deleted row is gone), so only the backlog's
        # republish can bring one twice, and applying one twice changes nothing.
        handler = self._inbound.handler
        if handler is not None:
            await handler.inbox_changed(change)
        await self._publish([(self.user_channel(change.user_id),
                              wire.encode(self.node_id, change, self._max_bytes))])

    @property
    def backlog(self) -> int:
        """Messages waiting to be published again (`retry.py`)."""
        return len(self._backlog)

    async def _publish(self, messages: list[tuple[str, bytes]]) -> None:
        """One round trip per shard. What cannot go now (Redis failed or timed out, the
        breaker is open, or older messages still wait) joins the backlog, sent again by
        `_retry` once Redis answers."""
        if self._backlog or time.monotonic() < self._breaker_until:
            self._defer(messages)
            return
        try:
            await asyncio.wait_for(self._links.publish(messages), PUBLISH_TIMEOUT_S)
        except Failure as exc:
            self._trip(exc)
            self._defer(messages)
            return
        self._metrics.fanout_published.inc(len(messages))

    def _trip(self, exc: BaseException) -> None:
        if time.monotonic() >= self._breaker_until:
            log.warning("publish to Redis failed (%s): skipping Redis for %.0f s, then "
                        "publishing again what waits", type(exc).__name__, BREAKER_S)
        self._breaker_until = time.monotonic() + BREAKER_S

    def _defer(self, messages: list[tuple[str, bytes]]) -> None:
        refused = self._backlog.add(messages)
        if refused:
            self._metrics.fanout_publish_skipped.inc(refused)
            if not self._overflowing:
                self._overflowing = True
                log.warning("the publish backlog is full (%d messages): dropping what "
                            "does not fit until it empties; clients' replay has it",
                            len(self._backlog))

    async def _retry(self) -> None:
        """Publishes the backlog again, oldest first, whenever the breaker is closed."""
        while True:
            await self._backlog.waiting.wait()
            delay = self._breaker_until - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            try:
                await self._republish()
            except Exception as exc:
                # While anything waits, every new publish queues behind it: this loop
                # must outlive any error, or live delivery across nodes would stop.
                log.exception("publishing the backlog again failed")
                self._trip(exc)

    async def _republish(self) -> None:
        """One batch of the backlog; on failure the breaker opens again."""
        batch = self._backlog.head()
        try:
            await asyncio.wait_for(self._links.publish(batch), PUBLISH_TIMEOUT_S)
        except Failure as exc:
            self._trip(exc)
            return
        self._backlog.drop(len(batch))
        self._metrics.fanout_published.inc(len(batch))
        if not self._backlog:
            if self._overflowing:
                log.warning("the publish backlog is empty again")
            else:
                log.info("published again what waited for Redis")
            self._overflowing = False

    # -- presence ---------------------------------------------------------------------------

    async def watch(self, user_id: str) -> None:
        """A socket of `user_id` arrived; see `Presence.watch`. Never raises."""
        await self._presence.watch(user_id)

    def unwatch(self, user_id: str) -> None:
        """A socket of `user_id` left; the channel goes `linger_s` after the last one."""
        self._presence.unwatch(user_id)

    def _holds(self, user_id: str) -> bool:
        return self._presence.holds(user_id)
