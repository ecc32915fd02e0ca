"""The publishes that did not go through, kept in order to be sent again.

A publish that fails, times out or meets the open breaker is not given up: its messages
join this node's backlog, and `RedisFanout` sends the backlog again, oldest first, as soon
as Redis answers (when the breaker closes; while the backlog holds anything, new publishes
queue behind it so a user's events keep their order). The backlog is bounded in messages
and bytes; what does not fit is counted (`tidings_fanout_publish_skipped_total`) and left
to the client's replay.

A publish that timed out may have reached Redis anyway, so a message can be published
twice: a receiving node emits a notification id or a status move once only (`Recent` in
`catchup.py`), an inbox change applied twice changes nothing. Delivery across nodes is thus
at least once; a socket gets a notification id once as long as its node remembers it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

MAX_MESSAGES = 10_000
MAX_BYTES = 16 * 1024 * 1024
# Messages sent again in one round trip: small enough to fit in PUBLISH_TIMEOUT_S on a
# loaded node, large enough to empty a full backlog in a few seconds.
RETRY_BATCH = 500


class Backlog:
    """Messages (channel, data) waiting to be published again, oldest first."""

    def __init__(self, max_messages: int = MAX_MESSAGES, max_bytes: int = MAX_BYTES) -> None:
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._items: deque[tuple[str, bytes]] = deque()
        self._bytes = 0
        self.waiting = asyncio.Event()  # set while it holds anything

    def __len__(self) -> int:
        return len(self._items)

    def add(self, messages: Sequence[tuple[str, bytes]]) -> int:
        """Keeps what fits, in order; returns how many messages did not fit."""
        refused = 0
        for channel, data in messages:
            size = len(channel) + len(data)
            if len(self._items) >= self._max_messages or self._bytes + size > self._max_bytes:
                refused += 1
                continue
            self._items.append((channel, data))
            self._bytes += size
        if self._items:
            self.waiting.set()
        return refused

    def head(self, count: int = RETRY_BATCH) -> list[tuple[str, bytes]]:
        """The oldest `count` messages, left in place until `drop` says they went out."""
        return [self._items[index] for index in range(min(count, len(self._items)))]

    def drop(self, count: int) -> None:
        """The oldest `count` messages were published."""
        for _ in range(min(count, len(self._items))):
            channel, data = self._items.popleft()
            self._bytes -= len(channel) + len(data)
        if not self._items:
            self.waiting.clear()
