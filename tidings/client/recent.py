"""A bounded memory of the notification ids already handed out, so that a replay which
overlaps what arrived live (or a server's at-least-once resend) is not yielded twice."""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    """Remembers the last `capacity` ids; the oldest is forgotten first. An id older
    than the last `capacity` could be yielded again: size it above what one replay
    window can hold."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, notification_id: str) -> bool:
        """Remember the id; False when it was already remembered."""
        if notification_id in self._ids:
            self._ids.move_to_end(notification_id)
            return False
        self._ids[notification_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, notification_id: object) -> bool:
        return notification_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)
