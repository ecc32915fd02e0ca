"""Who is connected, for both clients (an admin token): every node's open sockets and the
users they belong to (`GET /api/admin/connections`), and the methods `TidingsClient` and
`AsyncTidingsClient` take in. A node's summary may be a few seconds old; `partial` says
the answering node could not read the others' from Redis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from tidings.client.calls import Call

T = TypeVar("T")
CONNECTIONS = "/api/admin/connections"


@dataclass(frozen=True, slots=True)
class UserSockets:
    user_id: str
    sockets: int


@dataclass(frozen=True, slots=True)
class NodeConnections:
    """One node: `users` lists the users with most sockets first (at most the `limit`
    asked for); `users_total` counts every user with a socket there."""

    node: str
    connections: int
    users_total: int
    users: list[UserSockets]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> NodeConnections:
        return cls(str(body["node"]), int(body["connections"]), int(body["users_total"]),
                   [UserSockets(str(u["user_id"]), int(u["sockets"])) for u in body["users"]])


@dataclass(frozen=True, slots=True)
class Connections:
    """Every node that answered, by name, and their sockets in all."""

    connections: int
    nodes: list[NodeConnections]
    partial: bool


def _decode(response: httpx.Response) -> Connections:
    body = response.json()
    return Connections(int(body["connections"]),
                       [NodeConnections.from_json(node) for node in body["nodes"]],
                       bool(body["partial"]))


def connections(limit: int | None) -> Call[Connections]:
    params: dict[str, str | int] = {"limit": limit} if limit is not None else {}
    return Call("GET", CONNECTIONS, _decode, params=params)


class ConnectionMethods:
    """The blocking client's view of who is connected (role `admin`)."""

    def _send(self, call: Call[T]) -> T:
        raise NotImplementedError

    def connections(self, *, limit: int | None = None) -> Connections:
        """Open sockets on every node; `limit` (1-200, default 200) users per node."""
        return self._send(connections(limit))


class AsyncConnectionMethods:
    """As `ConnectionMethods`, awaited."""

    async def _send(self, call: Call[T]) -> T:
        raise NotImplementedError

    async def connections(self, *, limit: int | None = None) -> Connections:
        return await self._send(connections(limit))
