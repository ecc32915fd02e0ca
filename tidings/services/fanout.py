"""The fan-out, as the rules see it: carries "this notification reached its user", "this
notification's status changed" and "this user's inbox changed" to every node that may hold
a socket of that user.

Services speak to a `Fanout`, implemented in `realtime/` (in process, or over Redis); on
each node a `FanoutHandler` (the Socket.IO gateway) receives what the fan-out carries and
emits it to the node's own sockets. Everything that crosses is a plain record of the
domain (`Notification`, `StatusChange`, `InboxChange`), so a fan-out between processes
(Redis) serialises it as it is.

The gateway also tells the fan-out who is here (`watch` when a socket of a user arrives,
`unwatch` when one leaves), so that a fan-out between nodes listens only for the users the
node holds. (Waking the delivery workers is the queue signal's job: `queue_signal.py`.)

Guarantees a caller may rely on: best effort and at most once per call. A socket that is not
connected at that moment, or a node that is unreachable, misses the message; durability
is the database's job (clients replay with `requestMissedNotifications`). Messages of one
call reach a node in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tidings.domain.notification import InboxChange, Notification, StatusChange


class FanoutHandler(Protocol):
    """The receiving end on one node."""

    async def deliver(self, notifications: Sequence[Notification]) -> None:
        """Emit each notification to the local sockets of its own user (a channel's
        copies are one record per subscriber)."""

    async def status_changed(self, change: StatusChange) -> None:
        """Tell the local sockets of `change.user_id`."""

    async def inbox_changed(self, change: InboxChange) -> None:
        """Tell the local sockets of `change.user_id`."""


class Fanout(Protocol):
    def attach(self, handler: FanoutHandler) -> None:
        """Registered once, where the application is built; sending before is an error."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def notify(self, notifications: Sequence[Notification]) -> None:
        """Each notification to its user's sockets, on whichever node they are."""

    async def status_changed(self, change: StatusChange) -> None:
        """To every socket of the user, on whichever node (other tabs and devices)."""

    async def inbox_changed(self, change: InboxChange) -> None:
        """To every socket of the user, on whichever node (other tabs and devices)."""

    async def watch(self, user_id: str) -> None:
        """A socket of `user_id` arrived on this node. When this returns, whatever is
        published for the user from then on reaches this node. Never raises."""

    def unwatch(self, user_id: str) -> None:
        """One socket of `user_id` left this node (one call per `watch`)."""
