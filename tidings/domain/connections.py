"""Who is connected: a node's sockets counted by user, as the operator console and
`GET /api/admin/connections` show them. Plain values: the counting itself is the socket
gateway's (`realtime/census.py`), the merge of several nodes the census's."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Users listed per node, most sockets first; `users_total` still counts every user.
MAX_USERS = 200


@dataclass(frozen=True, slots=True)
class UserSockets:
    user_id: str
    sockets: int

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "sockets": self.sockets}


@dataclass(frozen=True, slots=True)
class NodeConnections:
    """One node: its open sockets, how many users they belong to, and the users with the
    most sockets (at most MAX_USERS, ties by user id)."""

    node: str
    connections: int
    users_total: int
    users: tuple[UserSockets, ...]

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "connections": self.connections,
                "users_total": self.users_total, "users": [u.to_json() for u in self.users]}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> NodeConnections:
        """What another node published; a KeyError or a ValueError if it is not that."""
        users = tuple(UserSockets(str(u["user_id"]), int(u["sockets"]))
                      for u in body["users"])
        return cls(str(body["node"]), int(body["connections"]), int(body["users_total"]),
                   users)

    def cut(self, limit: int) -> NodeConnections:
        """The same node with at most `limit` users listed."""
        return NodeConnections(self.node, self.connections, self.users_total,
                               self.users[:limit])


def summarise(node: str, sockets: Mapping[str, int], cap: int = MAX_USERS) -> NodeConnections:
    """`sockets` (user -> open sockets) as a node's summary: O(n log cap), so a node with
    many users pays little for the few listed."""
    top = heapq.nsmallest(cap, sockets.items(), key=lambda item: (-item[1], item[0]))
    return NodeConnections(node, sum(sockets.values()), len(sockets),
                           tuple(UserSockets(user, count) for user, count in top))


@dataclass(frozen=True, slots=True)
class ConnectionsOverview:
    """Every node that answered, by name. `partial`: the other nodes' summaries could not
    be read (Redis down), so only this node is listed."""

    nodes: Sequence[NodeConnections]
    partial: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"connections": sum(n.connections for n in self.nodes),
                "nodes": [n.to_json() for n in self.nodes], "partial": self.partial}
