"""Keeps a node's own sockets live from the database while Redis is down.

Every poll reads what became visible, and which statuses moved, after a watermark, for the
users the node holds (through `services/fanout_reads.py`), and hands it to the node's
handler. The watermark trails the poll by
`OVERLAP`, since a row is stamped before its transaction commits; what the overlap reads
again is recognised in `Recent` and not sent twice.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime, timedelta

from tidings.domain.model import utcnow
from tidings.domain.notification import Notification, StatusChange
from tidings.services.fanout import FanoutHandler
from tidings.services.fanout_reads import FanoutReads

OVERLAP = timedelta(seconds=5)
POLL_LIMIT = 1000


class Recent:
    """The last `size` things this node emitted (notification ids, status moves): a poll
    or a late Redis message about one of them is not emitted again."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._seen: OrderedDict[Hashable, None] = OrderedDict()

    def first_time(self, key: Hashable) -> bool:
        """True once per key (while it is remembered)."""
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True

    def fresh_notifications(self, notes: Sequence[Notification]) -> list[Notification]:
        return [note for note in notes if self.first_time(("n", note.id))]

    def fresh_status(self, change: StatusChange) -> bool:
        return self.first_time(("s", change.id, change.status))


class CatchUp:
    """The polling side of the fan-out, for the users `held()` names."""

    def __init__(self, reads: FanoutReads, recent: Recent, held: Callable[[], list[str]],
                 clock: Callable[[], datetime] = utcnow, limit: int = POLL_LIMIT) -> None:
        self._reads = reads
        self._limit = limit
        self._recent = recent
        self._held = held
        self._clock = clock
        self.watermark = clock()

    def rewind(self, lag: timedelta) -> None:
        """Redis went down: what was published during the last `lag` may not have arrived."""
        self.watermark = self._clock() - lag

    async def poll(self, handler: FanoutHandler) -> int:
        """One pass; returns how many events went to the handler."""
        users = sorted(self._held())
        now = self._clock()
        if not users:
            self.watermark = max(self.watermark, now - OVERLAP)
            return 0
        after = self.watermark
        missed = await self._reads.missed(users, after, now, self._limit)
        fresh = self._recent.fresh_notifications(missed.notifications)
        if fresh:
            await handler.deliver(fresh)
        moved = [change for change in missed.changes if self._recent.fresh_status(change)]
        for change in moved:
            await handler.status_changed(change)
        if missed.complete_until < now:
            # More than one poll's worth: the next one goes on from where this one stopped.
            self.watermark = max(after, missed.complete_until - timedelta(microseconds=1))
        else:
            self.watermark = max(after, now - OVERLAP)
        return len(fresh) + len(moved)
