"""The census of several nodes over Redis: each node publishes its own sockets counted by
user (at most `MAX_USERS` listed) and reads the others'.

Keys, under REDIS_PREFIX and in one hash slot (the `{...}` tag, so a Redis Cluster keeps
them on one master and a single MGET reads them): `{<prefix>:connections}` is the set of
node names, `{<prefix>:connections}:<node>` a node's summary as JSON with a TTL of
`TTL_S`. A node rewrites its summary every `EVERY_S`, and soon after its sockets change
(`GAP_S` later, so a burst of connects is one write); a node that stops deletes its own, a
node that dies leaves it to expire. Readers drop from the set the names whose summary
has expired.

The census has a connection of its own (not the fan-out's, whose subscriber connections
are for sockets), opened on first use and again after a failure. Redis being away costs
the others' summaries only: this node answers for itself, marked `partial`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from tidings.domain.connections import ConnectionsOverview, NodeConnections
from tidings.realtime.background import Background
from tidings.realtime.census import SocketCounts
from tidings.realtime.redis.shard import Failure
from tidings.support.redis_sentinel import (
    is_sentinel_url,
    master_pool,
    open_sentinel,
    parse_sentinel_url,
)

log = logging.getLogger(__name__)

EVERY_S = 5.0
TTL_S = 15
GAP_S = 0.5
TIMEOUT_S = 1.0


class RedisCensus:
    """Implements `ConnectionCensus` over Redis; see the module docstring."""

    def __init__(self, node: str, counts: SocketCounts, *, url: str, password: str,
                 cluster: bool, prefix: str, every_s: float = EVERY_S,
                 gap_s: float = GAP_S) -> None:
        self.node = node
        self._counts = counts
        self._url = url
        self._password = password
        self._cluster = cluster
        self._index = f"{{{prefix}:connections}}"
        self._every_s = every_s
        self._gap_s = gap_s
        self._client: Redis | RedisCluster | None = None
        self._sentinel: Sentinel | None = None
        self._background = Background()
        self._failing = False

    def key(self, node: str) -> str:
        return f"{self._index}:{node}"

    async def start(self) -> None:
        self._background.spawn(self._publishing(), "tidings-census")

    async def close(self) -> None:
        await self._background.cancel_all(*Failure)
        client = self._client
        if client is None:
            return
        with contextlib.suppress(*Failure):  # gone at once; else it expires
            await client.delete(self.key(self.node))
            await client.srem(self._index, self.node)
        self._client = None
        with contextlib.suppress(*Failure):
            await client.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()
            self._sentinel = None

    async def overview(self) -> ConnectionsOverview:
        own = self._counts.summary(self.node)
        try:
            others = await asyncio.wait_for(self._read(), TIMEOUT_S)
        except Failure as exc:
            log.warning("reading the other nodes' connections failed (%s)", type(exc).__name__)
            return ConnectionsOverview([own], partial=True)
        return ConnectionsOverview([own, *(n for n in others if n.node != self.node)])

    # -- Redis ------------------------------------------------------------------------------

    def _connection(self) -> Redis | RedisCluster:
        if self._client is None:
            options: dict[str, Any] = {"password": self._password or None,
                                       "socket_timeout": TIMEOUT_S,
                                       "socket_connect_timeout": TIMEOUT_S}
            if self._cluster:
                self._client = RedisCluster.from_url(self._url, **options)
            elif is_sentinel_url(self._url):
                address = parse_sentinel_url(self._url)
                self._sentinel = open_sentinel(address, TIMEOUT_S)
                self._client = Redis.from_pool(master_pool(
                    self._sentinel, address, retry=Retry(NoBackoff(), 0), **options))
            else:
                self._client = Redis.from_url(self._url, retry=Retry(NoBackoff(), 0),
                                              **options)
        return self._client

    async def _read(self) -> list[NodeConnections]:
        client = self._connection()
        members = await client.smembers(self._index)
        names = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        if not names:
            return []
        values = await client.mget([self.key(name) for name in names])
        expired = [name for name, value in zip(names, values, strict=True) if value is None]
        if expired:
            await client.srem(self._index, *expired)
        found = []
        for value in values:
            if value is None:
                continue
            try:
                found.append(NodeConnections.from_json(orjson.loads(value)))
            except (ValueError, KeyError, TypeError):
                continue  # not a summary of this release: left out
        return found

    async def _publish(self) -> None:
        summary = orjson.dumps(self._counts.summary(self.node).to_json())
        client = self._connection()
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(self.key(self.node), summary, ex=TTL_S)
            pipe.sadd(self._index, self.node)
            pipe.expire(self._index, TTL_S)  # the set goes when the last node is gone
            await pipe.execute()

    async def _publishing(self) -> None:
        """Every `every_s`, and `gap_s` after the counts change."""
        while True:
            self._counts.changed.clear()
            try:
                await asyncio.wait_for(self._publish(), TIMEOUT_S)
            except Failure as exc:
                if not self._failing:
                    log.warning("publishing this node's connections failed (%s); trying "
                                "again every %.0f s", type(exc).__name__, self._every_s)
                self._failing = True
            else:
                self._failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._counts.changed.wait(), self._every_s)
            await asyncio.sleep(self._gap_s)
