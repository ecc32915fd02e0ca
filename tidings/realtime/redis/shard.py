"""One subscriber connection to a Redis server, and what every connection shares: its
options (no retries: a failure surfaces at once and the fan-out decides) and how
subscriptions are batched.

On a cluster, sharded pub/sub is used (SPUBLISH/SSUBSCRIBE, Redis >= 7): one SSUBSCRIBE
may only name channels of one slot; subscriptions are therefore sent per slot, at most
`MAX_CHANNELS_PER_COMMAND` channels a command. Both modes batch the same way, so a
resubscribe after an outage is a few hundred commands, not one per user.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError

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
    # The server ended this subscription by itself: on a cluster, the channel's slot moved
    # to another master (Redis 7 sends `sunsubscribe` to its subscribers then).
    dropped: bool = False


class TopologyChanged(ConnectionError):
    """A cluster's slots moved under a subscription or a publish, or the Sentinels name
    another master: the links must be opened again, which finds where things are now."""


class Shard:
    """One subscriber connection (its own socket, never used for commands)."""

    def __init__(self, client: Redis, sharded: bool) -> None:
        self._client = client
        self._sharded = sharded
        self._pubsub: PubSub = client.pubsub()
        # The connection opens with the first subscription; reading waits for it.
        self._opened = asyncio.Event()
        self._last_read = time.monotonic()
        self._leaving: set[str] = set()  # unsubscribed by us, not yet confirmed

    async def subscribe(self, channels: Sequence[str]) -> None:
        for batch in _batches(channels, self._sharded):
            if self._sharded:
                await self._pubsub.ssubscribe(*batch)
            else:
                await self._pubsub.subscribe(*batch)
            self._opened.set()
            self._last_read = time.monotonic()

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        self._leaving.update(channels)
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
        if kind in ("unsubscribe", "sunsubscribe"):
            if channel in self._leaving:
                self._leaving.discard(channel)
                return None
            return Received(channel, b"", dropped=True)
        return None

    def silent_for(self) -> float:
        """Seconds since this connection last read anything (0 before it is opened)."""
        return time.monotonic() - self._last_read if self._opened.is_set() else 0.0

    async def ping(self) -> None:
        """Ask for an answer on the subscriber connection itself (read by `read`)."""
        if self._opened.is_set():
            await self._pubsub.ping()

    async def close(self) -> None:
        await self._pubsub.aclose()
        await self._client.aclose()

def client_options(password: str) -> dict[str, Any]:
    return {
        "password": password or None,
        "socket_connect_timeout": COMMAND_TIMEOUT_S,
        "socket_timeout": COMMAND_TIMEOUT_S,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }

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
