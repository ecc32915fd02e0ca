"""Control messages (queue wake-ups, cache invalidations) over Redis pub/sub (REDIS_URL
set), on connections of their own (the socket fan-out's are for sockets): one for
publishing, one subscribed to `{prefix}:ctl`.

A standalone server, a Sentinel-managed master (`redis+sentinel://`, asked where the
master is at each connection) and a Redis Cluster (REDIS_CLUSTER: sharded pub/sub on the
master that owns the channel's slot, read from the cluster at each connection) are all
one channel on one server; a failover or a slot move breaks the connection or fails a
publish, and the relay connects again where the channel now lives.

A wake-up is msgpack `{"v": 1, "o": origin, "k": "w"}`, as the fan-out sent it on the
same channel before wake-ups had connections of their own: nodes of both releases wake
each other during a rolling upgrade. An invalidation is `{"v": 1, "o": origin, "k": "i",
"scope": scope, "key": key}`, the form that fan-out defined for it (nodes of that release
ignore it: they cache nothing).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgpack
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from tidings.support.metrics import Metrics
from tidings.support.redis_sentinel import (
    is_sentinel_url,
    master_pool,
    open_sentinel,
    parse_sentinel_url,
)

TIMEOUT_S = 1.0
# A subscriber connection that read nothing, not even the answer to its PING, for twice
# this long is taken for dead (a peer gone without closing the connection).
HEARTBEAT_S = 5.0

VERSION = 1
WAKE = "w"
INVALIDATE = "i"


class RedisRelay:
    """Implements `Relay` over Redis pub/sub; see the module docstring."""

    def __init__(self, url: str, password: str, *, cluster: bool, prefix: str,
                 metrics: Metrics) -> None:
        self._url = url
        self._password = password
        self._cluster = cluster
        self._metrics = metrics
        self.channel = f"{prefix}:ctl"
        self.origin = uuid.uuid4().hex
        self._message: bytes = msgpack.packb({"v": VERSION, "o": self.origin, "k": WAKE})
        self._sentinel: Sentinel | None = None
        self._commands: Redis | None = None
        self._subscriber: Redis | None = None
        self._pubsub: PubSub | None = None

    async def open(self) -> None:
        await self.close()
        make = await self._factory()
        self._commands = make()
        await self._commands.ping()
        self._subscriber = make()
        self._pubsub = self._subscriber.pubsub()
        if self._cluster:
            await self._pubsub.ssubscribe(self.channel)
        else:
            await self._pubsub.subscribe(self.channel)
        if await self._pubsub.get_message(timeout=TIMEOUT_S) is None:
            raise ConnectionError(f"Redis did not confirm the subscription to {self.channel}")

    async def _factory(self) -> Callable[[], Redis]:
        """How to open a connection to the server that holds the channel."""
        options = _options(self._password)
        if self._cluster:
            cluster = RedisCluster.from_url(self._url, password=self._password or None,
                                            socket_connect_timeout=TIMEOUT_S,
                                            socket_timeout=TIMEOUT_S)
            try:
                await cluster.initialize()
                node = cluster.get_node_from_key(self.channel)
            finally:
                await cluster.aclose()
            if node is None:
                raise ConnectionError(f"no master owns the slot of {self.channel}")
            host, port = node.host, int(node.port)
            return lambda: Redis(host=host, port=port, **options)
        if is_sentinel_url(self._url):
            address = parse_sentinel_url(self._url)
            sentinel = self._sentinel = open_sentinel(address, TIMEOUT_S)
            return lambda: Redis.from_pool(master_pool(sentinel, address, **options))
        return lambda: Redis.from_url(self._url, **options)

    async def listen(self, heard: Callable[[], None],
                     invalidated: Callable[[str, str], None]) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            raise ConnectionError("not connected to Redis")
        last_read = time.monotonic()
        while True:
            message: dict[str, Any] | None = await pubsub.get_message(timeout=HEARTBEAT_S)
            if message is None:
                if time.monotonic() - last_read > 2 * HEARTBEAT_S:
                    raise ConnectionError("the subscriber connection stopped answering")
                await pubsub.ping()
                continue
            last_read = time.monotonic()
            kind = _text(message["type"])
            if kind in ("unsubscribe", "sunsubscribe"):
                # A cluster gave the channel's slot to another master.
                raise ConnectionError(f"Redis dropped the subscription to {self.channel}")
            if kind in ("message", "smessage"):
                self._metrics.fanout_received.labels(channel="control").inc()
                body = self.decode(bytes(message["data"]))
                if body is None:
                    continue
                if body.get("k") == WAKE:
                    heard()
                elif (body.get("k") == INVALIDATE and isinstance(body.get("scope"), str)
                      and isinstance(body.get("key"), str)):
                    invalidated(body["scope"], body["key"])

    def decode(self, data: bytes) -> dict[str, Any] | None:
        """The message if another process of this version sent it."""
        try:
            body = msgpack.unpackb(data, raw=False)
        except (ValueError, msgpack.UnpackException):
            return None
        if (isinstance(body, dict) and body.get("v") == VERSION
                and body.get("o") != self.origin):
            return body
        return None

    async def send(self) -> None:
        await self._publish(self._message)

    async def send_invalidations(self, items: Sequence[tuple[str, str]]) -> None:
        for scope, key in items:
            await self._publish(msgpack.packb({"v": VERSION, "o": self.origin,
                                               "k": INVALIDATE, "scope": scope, "key": key}))

    async def _publish(self, message: bytes) -> None:
        if self._commands is None:
            raise ConnectionError("not connected to Redis")
        if self._cluster:
            await self._commands.execute_command(  # type: ignore[no-untyped-call]
                "SPUBLISH", self.channel, message)
        else:
            await self._commands.publish(self.channel, message)

    async def close(self) -> None:
        pubsub, subscriber, commands, sentinel = (self._pubsub, self._subscriber,
                                                  self._commands, self._sentinel)
        self._pubsub = self._subscriber = self._commands = self._sentinel = None
        if pubsub is not None:
            await pubsub.aclose()
        for client in (subscriber, commands):
            if client is not None:
                await client.aclose()
        if sentinel is not None:
            await sentinel.aclose()


def _options(password: str) -> dict[str, Any]:
    # No retries inside redis-py: a failure surfaces at once and the relay reconnects.
    return {"password": password or None, "socket_connect_timeout": TIMEOUT_S,
            "socket_timeout": TIMEOUT_S, "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
