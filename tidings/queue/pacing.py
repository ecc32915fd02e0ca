"""The pacing checks at claim time (contract section 9): a delivery due inside its user's
quiet hours goes back to `pending` until they end; one past THROTTLE_PER_HOUR joins the
(user, medium) digest sent at the next clock hour. Neither counts as a try. The rules are
`tidings.domain.pacing`'s; this applies them to a claimed batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain import pacing
from tidings.domain.delivery import DeliveryMedium
from tidings.domain.feed import FEED_USER
from tidings.queue.batch import BatchContext
from tidings.store import pacing as pacing_store
from tidings.store.database import Database
from tidings.store.queue import Claimed


class Pacer:
    """Holds back, in one transaction, the claimed deliveries that may not go now."""

    def __init__(self, db: Database, clock: Callable[[], datetime],
                 throttle_per_hour: int) -> None:
        self._db = db
        self._clock = clock
        self._throttle = throttle_per_hour

    async def pace(self, claimed: Sequence[Claimed], context: BatchContext) -> list[Claimed]:
        """Defers or folds what may not go now; returns the deliveries that go now."""
        now = self._clock()
        going: list[Claimed] = []
        async with self._db.begin() as conn:
            for item in claimed:
                note = context.notifications.get(item.notification_id)
                # Webhooks and team feeds reach systems, not a person: no quiet hours, no
                # hourly limit. What is gone is sent on for the dispatcher to skip.
                if item.medium == DeliveryMedium.WEBHOOK or item.user_id == FEED_USER \
                        or note is None or not note.live_at(now):
                    going.append(item)
                    continue
                verdict, until = pacing.verdict(now, note.priority,
                                                context.quiet.get(item.user_id))
                if verdict is pacing.Verdict.DEFER and until is not None:
                    await pacing_store.release(conn, item, now, due_at=until,
                                               deferred_until=until)
                elif pacing.throttled(note.priority, item.attempts == 1, self._throttle) and (
                    not await pacing_store.count_send(conn, item.user_id, item.medium,
                                                      pacing.hour_of(now), self._throttle)
                ):
                    await self._fold(conn, item, now)
                else:
                    going.append(item)
        return going

    async def _fold(self, conn: AsyncConnection, item: Claimed, now: datetime) -> None:
        """Past the hourly limit: into the throttle digest of (user, medium), which goes
        at the start of the next hour and counts there as one send."""
        closes = pacing.next_hour(now)
        windows = await pacing_store.open_windows(conn, [(item.user_id, item.medium)],
                                                  pacing.THROTTLE_KEY, closes, now)
        window = windows[(item.user_id, item.medium)]
        await pacing_store.release(conn, item, now, due_at=window.closes_at,
                                   digest_id=window.id)
