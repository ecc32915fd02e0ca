"""The connections of one node to Redis: one for commands (publishes) and one subscriber
connection per Redis shard (`shard.py`): one on a standalone server or a
Sentinel-managed master, one per master on a cluster (`cluster_links.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from tidings.realtime.redis.cluster_links import ClusterLinks
from tidings.realtime.redis.shard import COMMAND_TIMEOUT_S, Failure, Shard, client_options
from tidings.support.redis_sentinel import (
    SentinelAddress,
    is_sentinel_url,
    master_pool,
    open_sentinel,
    parse_sentinel_url,
)

# How often a node asks the Sentinels whether the master moved.
MASTER_CHECK_S = 1.0


class Links(Protocol):
    """What the fan-out needs of Redis, whichever its topology."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def shards(self) -> Sequence[Shard]: ...

    def shard_of(self, channel: str) -> Shard: ...

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None: ...

    async def changed(self) -> None:
        """Returns when the links must be opened again (a cluster's slots moved, or the
        Sentinels name another master)."""


class StandaloneLinks:
    """A single Redis server (or the master a proxy points at): plain PUBLISH and
    SUBSCRIBE."""

    def __init__(self, url: str, password: str) -> None:
        self._url = url
        self._password = password
        self._commands: Redis | None = None
        self._shard: Shard | None = None

    async def open(self) -> None:
        await self.close()
        await self._prepare()
        self._commands = self._client()
        await self._commands.ping()
        self._shard = Shard(self._client(), sharded=False)

    async def _prepare(self) -> None:
        """What the clients need before they are made (nothing here)."""

    def _client(self) -> Redis:
        return Redis.from_url(self._url, **client_options(self._password))

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

    async def changed(self) -> None:
        await asyncio.Event().wait()  # a single server's topology does not change

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if self._commands is None:
            raise ConnectionError("not connected to Redis")
        async with self._commands.pipeline(transaction=False) as pipe:
            for channel, data in messages:
                pipe.publish(channel, data)
            await pipe.execute()


class SentinelLinks(StandaloneLinks):
    """The master that Sentinels name (`redis_sentinel.py`): as a single server, but each
    connection asks the Sentinels where the master is as it opens, and the Sentinels are
    asked again every MASTER_CHECK_S. A failover thus reopens the links on the new master
    as soon as the Sentinels name it: a dead master breaks the subscriber connection; a
    master demoted alive would keep its clients until the Sentinel reconfigures it (up to
    10 s later), while nodes connecting meanwhile would go to the new one."""

    def __init__(self, address: SentinelAddress, password: str) -> None:
        super().__init__("", password)
        self._address = address
        self._sentinel: Sentinel | None = None
        self._master: tuple[str, int] | None = None

    async def _prepare(self) -> None:
        self._sentinel = open_sentinel(self._address, COMMAND_TIMEOUT_S)
        self._master = await self._sentinel.discover_master(self._address.service)

    def _client(self) -> Redis:
        assert self._sentinel is not None  # made by _prepare
        pool = master_pool(self._sentinel, self._address, **client_options(self._password))
        return Redis.from_pool(pool)

    async def changed(self) -> None:
        while True:
            await asyncio.sleep(MASTER_CHECK_S)
            if self._sentinel is None:
                continue
            try:
                master = await self._sentinel.discover_master(self._address.service)
            except Failure:
                # No answer, or no master agreed on: the connections in use tell
                # whether the master is still there.
                continue
            if master != self._master:
                return

    async def close(self) -> None:
        await super().close()
        if self._sentinel is not None:
            await self._sentinel.aclose()
            self._sentinel = None


def build_links(url: str, password: str, cluster: bool) -> Links:
    """The links for REDIS_URL: a cluster's, a Sentinel-managed master's, or a server's."""
    if cluster:
        return ClusterLinks(url, password)
    if is_sentinel_url(url):
        return SentinelLinks(parse_sentinel_url(url), password)
    return StandaloneLinks(url, password)
