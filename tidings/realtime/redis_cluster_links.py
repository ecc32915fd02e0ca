"""The links of a Redis Cluster (sharded pub/sub, Redis >= 7): a channel lives on the
master that owns its hash slot, so a message crosses one shard instead of the whole bus."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

from redis.asyncio import Redis, RedisCluster

from tidings.realtime.redis_shard import COMMAND_TIMEOUT_S, Shard, client_options


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
            options = client_options(self._password)
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
