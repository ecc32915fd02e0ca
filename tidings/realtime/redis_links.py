"""The connections of one node to Redis: one for commands (publishes) and one subscriber
connection per Redis shard (one on a standalone server; one per master on a cluster).

On a cluster, sharded pub/sub is used (SPUBLISH/SSUBSCRIBE, Redis >= 7): a channel lives on
the master that owns its hash slot, so a message crosses one shard instead of the whole
bus. One SSUBSCRIBE may only name channels of one slot; subscriptions are therefore sent
per slot, at most `MAX_CHANNELS_PER_COMMAND` channels a command. Both modes batch the same
way, so a resubscribe after an outage is a few hundred commands, not one per user.

No retries here: a failure surfaces at once and the fan-out decides (breaker, polling).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError
from redis.retry import Retry

MAX_CHANNELS_PER_COMMAND = 512
COMMAND_TIMEOUT_S = 0.25

# What a Redis that is down, slow or moving looks like to a caller.
Failure = (RedisError, RedisClusterException, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Received:
    """One thing a subscriber connection read: a message on a channel, or the server's
    confirmation that a subscription is in place (`confirmed`)."""

    channel: str
    data: bytes
    confirmed: bool = False


class Shard:
    """One subscriber connection (its own socket, never used for commands)."""

    def __init__(self, client: Redis, sharded: bool) -> None:
        self._client = client
        self._sharded = sharded
        self._pubsub: PubSub = client.pubsub()
        # The connection opens with the first subscription; reading waits for it.
        self._opened = asyncio.Event()
        self._last_read = time.monotonic()

    async def subscribe(self, channels: Sequence[str]) -> None:
        for batch in _batches(channels, self._sharded):
            if self._sharded:
                await self._pubsub.ssubscribe(*batch)
            else:
                await self._pubsub.subscribe(*batch)
            self._opened.set()
            self._last_read = time.monotonic()

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        for batch in _batches(channels, self._sharded):
            if self._sharded:
                await self._pubsub.sunsubscribe(*batch)
            else:
                await self._pubsub.unsubscribe(*batch)

    async def read(self) -> Received | None:
        """The next message or confirmation; waits as long as it takes. Raises when the
        connection is lost."""
        await self._opened.wait()
        message: dict[str, Any] | None = await self._pubsub.get_message(timeout=None)
        self._last_read = time.monotonic()
        if message is None:
            return None
        kind = _text(message["type"])
        channel = _text(message["channel"])
        if kind in ("message", "smessage"):
            return Received(channel, bytes(message["data"]))
        if kind in ("subscribe", "ssubscribe"):
            return Received(channel, b"", confirmed=True)
        return None

    def silent_for(self) -> float:
        """Seconds since this connection last read anything (0 before it is opened)."""
        return time.monotonic() - self._last_read if self._opened.is_set() else 0.0

    async def ping(self) -> None:
        """Ask for an answer on the subscriber connection itself (read by `read`)."""
        if self._opened.is_set():
            await self._pubsub.ping()

    async def close(self) -> None:
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._client.aclose()


class Links(Protocol):
    """What the fan-out needs of Redis, whichever its topology."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def shards(self) -> Sequence[Shard]: ...

    def shard_of(self, channel: str) -> Shard: ...

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None: ...


def _client_options(password: str) -> dict[str, Any]:
    return {
        "password": password or None,
        "socket_connect_timeout": COMMAND_TIMEOUT_S,
        "socket_timeout": COMMAND_TIMEOUT_S,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }


class StandaloneLinks:
    """A single Redis server (or the master a proxy or Sentinel-managed address points
    at): plain PUBLISH and SUBSCRIBE."""

    def __init__(self, url: str, password: str) -> None:
        self._url = url
        self._password = password
        self._commands: Redis | None = None
        self._shard: Shard | None = None

    async def open(self) -> None:
        await self.close()
        self._commands = Redis.from_url(self._url, **_client_options(self._password))
        await self._commands.ping()
        subscriber = Redis.from_url(self._url, **_client_options(self._password))
        self._shard = Shard(subscriber, sharded=False)

    async def close(self) -> None:
        if self._shard is not None:
            await self._shard.close()
            self._shard = None
        if self._commands is not None:
            await self._commands.aclose()
            self._commands = None

    def shards(self) -> Sequence[Shard]:
        return [self._shard] if self._shard is not None else []

    def shard_of(self, channel: str) -> Shard:
        if self._shard is None:
            raise ConnectionError("not connected to Redis")
        return self._shard

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if self._commands is None:
            raise ConnectionError("not connected to Redis")
        async with self._commands.pipeline(transaction=False) as pipe:
            for channel, data in messages:
                pipe.publish(channel, data)
            await pipe.execute()


class ClusterLinks:
    """A Redis Cluster: the slot map is read from the cluster at `open`; each master gets
    a command client and a subscriber connection of its own. A topology change (failover,
    resharding) breaks a connection or answers MOVED: the fan-out then treats Redis as down
    and reopens, which reads the slot map afresh."""

    def __init__(self, url: str, password: str) -> None:
        self._url = url
        self._password = password
        self._cluster: RedisCluster | None = None
        self._commands: dict[str, Redis] = {}
        self._shards: dict[str, Shard] = {}

    async def open(self) -> None:
        await self.close()
        cluster = RedisCluster.from_url(self._url, password=self._password or None,
                                        socket_connect_timeout=COMMAND_TIMEOUT_S,
                                        socket_timeout=COMMAND_TIMEOUT_S)
        self._cluster = cluster
        await cluster.initialize()
        for node in cluster.get_primaries():
            options = _client_options(self._password)
            port = int(node.port)
            self._commands[node.name] = Redis(host=node.host, port=port, **options)
            self._shards[node.name] = Shard(Redis(host=node.host, port=port, **options),
                                            sharded=True)
        await asyncio.gather(*(client.ping() for client in self._commands.values()))

    async def close(self) -> None:
        for shard in self._shards.values():
            await shard.close()
        for client in self._commands.values():
            await client.aclose()
        self._shards.clear()
        self._commands.clear()
        if self._cluster is not None:
            await self._cluster.aclose()
            self._cluster = None

    def _node_of(self, channel: str) -> str:
        if self._cluster is None:
            raise ConnectionError("not connected to Redis")
        node = self._cluster.get_node_from_key(channel)
        if node is None:  # pragma: no cover - a cluster with unassigned slots
            raise ConnectionError(f"no master owns the slot of {channel}")
        return str(node.name)

    def shards(self) -> Sequence[Shard]:
        return list(self._shards.values())

    def shard_of(self, channel: str) -> Shard:
        return self._shards[self._node_of(channel)]

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        by_node: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
        for channel, data in messages:
            by_node[self._node_of(channel)].append((channel, data))
        await asyncio.gather(*(self._publish_on(self._commands[name], items)
                               for name, items in by_node.items()))

    @staticmethod
    async def _publish_on(client: Redis, messages: Sequence[tuple[str, bytes]]) -> None:
        async with client.pipeline(transaction=False) as pipe:
            for channel, data in messages:
                pipe.execute_command("SPUBLISH", channel, data)
            await pipe.execute()


def build_links(url: str, password: str, cluster: bool) -> Links:
    return ClusterLinks(url, password) if cluster else StandaloneLinks(url, password)


def _batches(channels: Iterable[str], sharded: bool) -> list[list[str]]:
    """Channels grouped for one command each: by hash slot when sharded (one SSUBSCRIBE
    may name one slot only), and never more than MAX_CHANNELS_PER_COMMAND."""
    groups: dict[int, list[str]] = defaultdict(list)
    for channel in channels:
        groups[key_slot(channel.encode()) if sharded else 0].append(channel)
    return [
        group[start:start + MAX_CHANNELS_PER_COMMAND]
        for group in groups.values()
        for start in range(0, len(group), MAX_CHANNELS_PER_COMMAND)
    ]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
