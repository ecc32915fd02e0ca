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

from tidings.domain.inputs import is_name
from tidings.domain.model import utcnow
from tidings.services.batching import Batcher
from tidings.store import subscriptions as store
from tidings.store.database import Database

MAX_SUBSCRIPTIONS = 200


@dataclass
class SubscriptionResult:
    subscribed: list[str] = field(default_factory=list)
    denied: list[object] = field(default_factory=list)


def may_join(name: object) -> bool:
    return is_name(name)


@dataclass(frozen=True)
class _SubscribeRequest:
    user_id: str
    valid: list[str]
    denied: list[object]


class SubscriptionService:
    """Owns users' topic subscriptions: who may join which channel, the per-user cap, and
    the writes (grouped across concurrent requests)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # A reconnect storm subscribes thousands of sockets at once: group commit them.
        self._batcher: Batcher[_SubscribeRequest, SubscriptionResult] = Batcher(
            self._write_batch, 500
        )

    async def subscribe(self, user_id: str, channels: Sequence[object]) -> SubscriptionResult:
        valid: list[str] = list(dict.fromkeys(n for n in channels if isinstance(n, str)
                                              and may_join(n)))
        denied: list[object] = [n for n in channels if not may_join(n)]
        return await self._batcher.submit(_SubscribeRequest(user_id, valid, denied))

    async def _write_batch(
        self, requests: list[_SubscribeRequest]
    ) -> list[SubscriptionResult | BaseException]:
        """One read of the users' current channels and one insert for the whole batch;
        requests of the same user apply in order, as if one after the other."""
        results: list[SubscriptionResult | BaseException] = []
        async with self._db.begin() as conn:
            have = await store.channels_of_users(conn, {r.user_id for r in requests})
            added_rows: list[tuple[str, str]] = []
            for request in requests:
                current = have.setdefault(request.user_id, set())
                fresh = [name for name in request.valid if name not in current]
                room = max(0, MAX_SUBSCRIPTIONS - len(current))
                added, over_limit = fresh[:room], fresh[room:]
                current.update(added)
                added_rows.extend((request.user_id, name) for name in added)
                results.append(SubscriptionResult(
                    subscribed=[name for name in request.valid if name in current],
                    denied=request.denied + over_limit,
                ))
            await store.add(conn, added_rows, utcnow())
        return results

    async def unsubscribe(self, user_id: str, channels: Sequence[object]) -> list[str]:
        names = [name for name in channels if isinstance(name, str)]
        async with self._db.begin() as conn:
            await store.remove(conn, user_id, names)
        return names
