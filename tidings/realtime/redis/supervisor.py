"""Keeps a node's subscriber connections to Redis up, and its sockets live while they are
not.

Connected: one reader per subscriber connection, and a heartbeat (a connection that read
nothing, not even the answer to its PING, for twice `heartbeat_s` is taken for dead: a
peer gone without closing the connection). Down: the node polls the database every
`poll_s` for the users it holds (`catchup.py`) and retries Redis every RECONNECT_S; once
back it resubscribes every held user in batches, polls one last time to close the gap, and
returns to Redis. `tidings_redis_up` says which of the two it is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from tidings.realtime.background import Background
from tidings.realtime.catchup import CatchUp
from tidings.realtime.redis.inbound import Inbound
from tidings.realtime.redis.links import Links
from tidings.realtime.redis.presence import Presence
from tidings.realtime.redis.shard import Failure, TopologyChanged
from tidings.support.metrics import Metrics

log = logging.getLogger(__name__)

RECONNECT_S = 0.5
PING_TIMEOUT_S = 0.25
# Messages published just before an outage was noticed may never have arrived.
OUTAGE_LAG = timedelta(seconds=5)


class Supervisor:
    def __init__(self, links: Links, presence: Presence, inbound: Inbound,
                 catchup: CatchUp, metrics: Metrics, background: Background, *,
                 own_channel: str, poll_s: float, heartbeat_s: float) -> None:
        self._links = links
        self._presence = presence
        self._inbound = inbound
        self._catchup = catchup
        self._metrics = metrics
        self._background = background
        # Nothing is published on it: it keeps a subscriber connection open on a node that
        # holds no socket (a `tidings worker`), whose heartbeat says whether Redis is there.
        self._own_channel = own_channel
        self._poll_s = poll_s
        self._heartbeat_s = heartbeat_s
        self._readers: list[asyncio.Task[None]] = []
        self.up = False
        self.first_attempt = asyncio.Event()  # set once the first connection was tried
        self.closing = asyncio.Event()
        metrics.redis_up.set(0)

    def set_up(self, up: bool) -> None:
        self.up = up
        self._metrics.redis_up.set(1 if up else 0)

    async def run(self) -> None:
        """Connected: read. Down: poll, and try again every RECONNECT_S."""
        poller: asyncio.Task[None] | None = None
        presence = self._presence
        while not self.closing.is_set():
            try:
                await self._connect()
                self.set_up(True)
                self.first_attempt.set()
                # Sockets that arrived while this node was reconnecting.
                await presence.subscribe_confirmed(
                    [user for user in presence.sockets if user not in presence.subscribed])
                presence.subscribed.update(presence.sockets)
                if poller is not None:
                    poller.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await poller
                    poller = None
                    await self._poll_once()  # the gap between the last poll and now
                await self._read_all()
            except Failure as exc:
                self._stop_readers()
                if self.up:
                    if isinstance(exc, TopologyChanged):
                        log.warning("Redis topology changed (%s): reconnecting, polling "
                                    "the database meanwhile", exc)
                    else:
                        log.warning("Redis is unreachable (%s): polling the database",
                                    type(exc).__name__)
                    self._catchup.rewind(OUTAGE_LAG)
                self.set_up(False)
                self.first_attempt.set()
                if poller is None:
                    poller = self._background.spawn(self._poll_while_down(),
                                                     "tidings-redis-poll")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.closing.wait(), RECONNECT_S)
        if poller is not None:
            poller.cancel()

    async def _connect(self) -> None:
        await self._links.open()
        self._readers = [self._background.spawn(self._inbound.read(shard), "tidings-redis-read")
                         for shard in self._links.shards()]
        users = list(self._presence.sockets)
        self._presence.subscribed = set(users)
        await self._presence.subscribe_confirmed(users, extra=[self._own_channel])

    def _stop_readers(self) -> None:
        for task in self._readers:
            task.cancel()
        self._readers = []

    async def _read_all(self) -> None:
        """Returns (raising) when any subscriber connection fails or stops answering, or
        when the links must be opened again (a cluster's slots moved, or the Sentinels
        name another master)."""
        changed = self._background.spawn(self._links.changed(), "tidings-redis-topology")
        try:
            while True:
                done, _ = await asyncio.wait([*self._readers, changed],
                                             timeout=self._heartbeat_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if not task.cancelled():
                        task.result()
                if changed in done:
                    raise TopologyChanged("Redis moved: a slot, or the master")
                if done:
                    raise ConnectionError("a subscriber connection ended")
                for shard in self._links.shards():
                    if shard.silent_for() > 2 * self._heartbeat_s:
                        raise ConnectionError("a subscriber connection stopped answering")
                    await asyncio.wait_for(shard.ping(), PING_TIMEOUT_S)
        finally:
            changed.cancel()

    async def _poll_while_down(self) -> None:
        while True:
            await self._poll_once()
            await asyncio.sleep(self._poll_s)

    async def _poll_once(self) -> None:
        if self._inbound.handler is None:
            return
        try:
            await self._catchup.poll(self._inbound.handler)
        except Exception:
            log.exception("polling the database for live events failed")
