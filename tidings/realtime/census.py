"""This node's sockets counted by user (kept by the gateway as sockets come and go), and
the census of a single node, which reads them directly (`services/connections.py`)."""

from __future__ import annotations

import asyncio
import socket
import uuid

from tidings.domain.connections import ConnectionsOverview, NodeConnections, summarise


def node_name() -> str:
    """A name for this process among the nodes: the host name, and a random suffix (several
    nodes may share a host, or a process in tests)."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"


class SocketCounts:
    """user -> open sockets on this node. `changed` is set at every change, for whoever
    publishes the counts (cleared by them)."""

    def __init__(self) -> None:
        self._sockets: dict[str, int] = {}
        self.changed = asyncio.Event()

    def arrived(self, user_id: str) -> None:
        self._sockets[user_id] = self._sockets.get(user_id, 0) + 1
        self.changed.set()

    def left(self, user_id: str) -> None:
        count = self._sockets.get(user_id, 0) - 1
        if count > 0:
            self._sockets[user_id] = count
        else:
            self._sockets.pop(user_id, None)
        self.changed.set()

    def summary(self, node: str) -> NodeConnections:
        return summarise(node, self._sockets)


class LocalCensus:
    """Implements `ConnectionCensus` on a node without Redis: it is the only node."""

    def __init__(self, node: str, counts: SocketCounts) -> None:
        self.node = node
        self._counts = counts

    async def overview(self) -> ConnectionsOverview:
        return ConnectionsOverview([self._counts.summary(self.node)])

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
