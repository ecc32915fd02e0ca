"""What the queue calls out through, declared here so that the queue depends on no layer
above it: the composition root hands it the fan-out, which has these methods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tidings.domain.notification import Notification, StatusChange


class Sockets(Protocol):
    """The users' sockets, on whichever node they are (best effort: replay covers a miss)."""

    async def notify(self, notifications: Sequence[Notification]) -> None:
        """Each notification to its user's sockets (scheduled ones, when they fall due)."""

    async def status_changed(self, change: StatusChange) -> None:
        """A notification's status followed its deliveries: to every socket of its user."""
