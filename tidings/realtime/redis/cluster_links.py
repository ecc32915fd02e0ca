"""The links of a Redis Cluster (sharded pub/sub, Redis >= 7): a channel lives on the
master that owns its hash slot, so a message crosses one shard instead of the whole bus.

The slot map is read from the cluster at `open`; each master gets a command client and a
subscriber connection of its own. When slots move (a resharding, a failover, a node
added), the map goes stale, and this is noticed three ways:
- a subscriber connection breaks (a master gone): the fan-out treats Redis as down;
- Redis drops the subscriptions of a slot it gave away (`sunsubscribe`, read by `Shard`);
- a publish answers MOVED: the batch is sent again to the master the answer names, at
  once, so nothing published is lost to the move.
In every case the fan-out opens the links again (`changed`), which reads the map afresh,
resubscribes the node's users at their slots' new owners, and polls the database over the
gap (`supervisor.py`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

from redis.asyncio import Redis, RedisCluster
from redis.crc import key_slot
from redis.exceptions import MovedError, SlotNotCoveredError

from tidings.realtime.redis.shard import (
    COMMAND_TIMEOUT_S,
    Shard,
    TopologyChanged,
    client_options,
)

Messages = Sequence[tuple[str, bytes]]


class ClusterLinks:
    """The links of a cluster; see the module docstring for how they follow slot moves."""

    def __init__(self, url: str, password: str) -> None:
        self._url = url
        self._password = password
        self._cluster: RedisCluster | None = None
        self._commands: dict[str, Redis] = {}
        self._shards: dict[str, Shard] = {}
        self._moved: dict[int, str] = {}  # slot -> "host:port", from MOVED answers
        self._changed = asyncio.Event()

    async def open(self) -> None:
        """Reads the slot map and connects to every master. The links in use go on
        publishing until the new ones are ready (a reopen after a slot move must not
        leave a gap where nothing can be published)."""
        self._changed.clear()  # a move noticed from now on reopens again
        cluster = RedisCluster.from_url(self._url, password=self._password or None,
                                        socket_connect_timeout=COMMAND_TIMEOUT_S,
                                        socket_timeout=COMMAND_TIMEOUT_S)
        commands: dict[str, Redis] = {}
        shards: dict[str, Shard] = {}
        try:
            await cluster.initialize()
            for node in cluster.get_primaries():
                commands[node.name] = self._client(node.name)
                shards[node.name] = Shard(self._client(node.name), sharded=True)
            await asyncio.gather(*(client.ping() for client in commands.values()))
        except BaseException:
            await _close(cluster, commands, shards)
            raise
        old = (self._cluster, self._commands, self._shards)
        self._cluster, self._commands, self._shards = cluster, commands, shards
        self._moved = {}
        await _close(*old)

    async def close(self) -> None:
        old = (self._cluster, self._commands, self._shards)
        self._cluster, self._commands, self._shards = None, {}, {}
        self._moved = {}
        await _close(*old)

    async def changed(self) -> None:
        await self._changed.wait()

    def _client(self, name: str) -> Redis:
        host, _, port = name.rpartition(":")
        return Redis(host=host, port=int(port), **client_options(self._password))

    def _command_client(self, name: str) -> Redis:
        client = self._commands.get(name)
        if client is None:  # a master that a MOVED answer named
            client = self._commands[name] = self._client(name)
        return client

    def _node_of(self, channel: str) -> str:
        if self._cluster is None:
            raise ConnectionError("not connected to Redis")
        moved = self._moved.get(key_slot(channel.encode()))
        if moved is not None:
            return moved
        try:
            node = self._cluster.get_node_from_key(channel)
        except SlotNotCoveredError:
            node = None
        if node is None:  # read mid-move: the map has the slot nowhere
            self._changed.set()
            raise TopologyChanged(f"no master owns the slot of {channel} yet")
        return str(node.name)

    def shards(self) -> Sequence[Shard]:
        return list(self._shards.values())

    def shard_of(self, channel: str) -> Shard:
        shard = self._shards.get(self._node_of(channel))
        if shard is None:  # the slot moved to a master this node has no connection to
            self._changed.set()
            raise TopologyChanged(f"the slot of {channel} moved to a new master")
        return shard

    async def publish(self, messages: Messages) -> None:
        by_node: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
        for channel, data in messages:
            by_node[self._node_of(channel)].append((channel, data))
        await asyncio.gather(*(self._publish_on(name, items, redirect=True)
                               for name, items in by_node.items()))

    async def _publish_on(self, name: str, messages: Messages, *, redirect: bool) -> None:
        async with self._command_client(name).pipeline(transaction=False) as pipe:
            for channel, data in messages:
                pipe.execute_command("SPUBLISH", channel, data)
            results = await pipe.execute(raise_on_error=False)
        again: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
        for message, result in zip(messages, results, strict=True):
            if isinstance(result, MovedError) and redirect:
                owner = f"{result.host}:{result.port}"
                self._moved[result.slot_id] = owner
                self._changed.set()
                again[owner].append(message)
            elif isinstance(result, Exception):
                raise result
        await asyncio.gather(*(self._publish_on(owner, items, redirect=False)
                               for owner, items in again.items()))


async def _close(cluster: RedisCluster | None, commands: dict[str, Redis],
                 shards: dict[str, Shard]) -> None:
    for shard in shards.values():
        await shard.close()
    for client in commands.values():
        await client.aclose()
    if cluster is not None:
        await cluster.aclose()
