"""Who is connected, for operators: every node's sockets counted by user.

The counting is done where the sockets are (`realtime/`): a node answers for itself, and
with Redis each node publishes its summary for the others to read (`ConnectionCensus`,
implemented in `realtime/census.py` and `realtime/redis/census.py`). A node's summary is
at most a few seconds old; a node that stopped without saying so drops out of the list
once its summary expires (15 s)."""

from __future__ import annotations

from typing import Protocol

from tidings.domain.connections import ConnectionsOverview


class ConnectionCensus(Protocol):
    async def overview(self) -> ConnectionsOverview:
        """Every node's summary that can be read now, this node's always among them and
        always current. Never raises: what cannot be read makes the answer `partial`."""


class ConnectionsService:
    def __init__(self, census: ConnectionCensus) -> None:
        self._census = census

    async def overview(self, limit: int) -> ConnectionsOverview:
        """Nodes by name, each listing at most `limit` users (most sockets first)."""
        found = await self._census.overview()
        nodes = sorted((node.cut(limit) for node in found.nodes), key=lambda n: n.node)
        return ConnectionsOverview(nodes, found.partial)
