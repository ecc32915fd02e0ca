"""Real-time fan-out, behind an interface of the project's own.

Services publish "this user" or "this channel" messages to a `Fanout`; the fan-out carries
them to every node that may hold a matching socket, where a `LocalSink` (the Socket.IO
gateway of that node) emits them. In-process now; a Redis implementation drops in later
without touching services, and so could another transport behind `LocalSink`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class LocalSink(Protocol):
    """Delivers to the sockets of this node."""

    async def emit_to_user(self, user_id: str, event: str, payload: Mapping[str, Any]) -> int:
        """Emit to every local socket of `user_id`; returns how many sockets got it."""

    async def emit_to_channel(
        self,
        channel: str,
        event: str,
        payload: Mapping[str, Any],
        copies: Mapping[str, Mapping[str, Any]],
    ) -> int:
        """Emit to every local socket in `channel:<channel>`. Each recipient has its own
        stored copy: `copies[user_id]` holds the fields that differ per user (id, user_id);
        sockets of users without a copy (subscribed after the fact) are skipped."""


class Fanout(Protocol):
    def attach(self, sink: LocalSink) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def to_user(self, user_id: str, event: str, payload: Mapping[str, Any]) -> None: ...

    async def to_channel(
        self,
        channel: str,
        event: str,
        payload: Mapping[str, Any],
        copies: Mapping[str, Mapping[str, Any]],
    ) -> None: ...


class InProcessFanout:
    """Single node: the publisher and the sockets share one process."""

    def __init__(self) -> None:
        self._sink: LocalSink | None = None

    def attach(self, sink: LocalSink) -> None:
        self._sink = sink

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._sink = None

    async def to_user(self, user_id: str, event: str, payload: Mapping[str, Any]) -> None:
        if self._sink is not None:
            await self._sink.emit_to_user(user_id, event, payload)

    async def to_channel(
        self,
        channel: str,
        event: str,
        payload: Mapping[str, Any],
        copies: Mapping[str, Mapping[str, Any]],
    ) -> None:
        if self._sink is not None:
            await self._sink.emit_to_channel(channel, event, payload, copies)
