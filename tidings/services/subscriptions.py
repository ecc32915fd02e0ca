"""Topic-channel subscriptions and the rules for who may join what.

Channel rules:
- a channel name is 1-100 characters of letters, digits, `_`, `.`, `-`, starting with a
  letter or digit; anything else (`user:bob`, `channel:x`, empty, not a string) is denied,
  so no client can reach another user's room through a crafted name;
- any authenticated user may subscribe to any valid name (topics are public), up to
  `MAX_SUBSCRIPTIONS` per user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tidings.domain.inputs import CHANNEL_PATTERN
from tidings.domain.model import utcnow
from tidings.store import subscriptions as store
from tidings.store.database import Database

MAX_SUBSCRIPTIONS = 200


@dataclass
class SubscriptionResult:
    subscribed: list[str] = field(default_factory=list)
    denied: list[object] = field(default_factory=list)


def may_join(name: object) -> bool:
    return isinstance(name, str) and CHANNEL_PATTERN.match(name) is not None


class SubscriptionService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def subscribe(self, user_id: str, channels: Sequence[object]) -> SubscriptionResult:
        valid: list[str] = list(dict.fromkeys(n for n in channels if isinstance(n, str)
                                              and may_join(n)))
        denied: list[object] = [n for n in channels if not may_join(n)]
        async with self._db.begin() as conn:
            existing = set(await store.channels_of(conn, user_id))
            fresh = [name for name in valid if name not in existing]
            room = max(0, MAX_SUBSCRIPTIONS - len(existing))
            added, over_limit = fresh[:room], fresh[room:]
            await store.add(self._db, conn, user_id, added, utcnow())
        kept = existing.union(added)
        return SubscriptionResult(
            subscribed=[name for name in valid if name in kept],
            denied=denied + over_limit,
        )

    async def unsubscribe(self, user_id: str, channels: Sequence[object]) -> list[str]:
        names = [name for name in channels if isinstance(name, str)]
        async with self._db.begin() as conn:
            await store.remove(conn, user_id, names)
        return names
