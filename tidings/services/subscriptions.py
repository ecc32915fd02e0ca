"""Topic-channel subscriptions: who is subscribed to what.

- A user may subscribe to a channel the channel rules let them join
  (`services/channel_rules.py`: invalid names never, every valid name when no rules are
  configured), up to `MAX_SUBSCRIPTIONS` per user.
- The rules are checked when a subscription is made, not again when a producer's channel
  notification fans out to the subscribers: roles live in tokens, which the server does not
  keep, so a subscription stands until `unsubscribe` even if the rules are tightened later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tidings.domain.fields import is_name
from tidings.domain.model import utcnow
from tidings.services.channel_rules import ChannelRules
from tidings.store import subscriptions as store
from tidings.store.database import Database
from tidings.support.batching import Batcher

MAX_SUBSCRIPTIONS = 200


@dataclass
class SubscriptionResult:
    subscribed: list[str] = field(default_factory=list)
    denied: list[object] = field(default_factory=list)


@dataclass(frozen=True)
class _SubscribeRequest:
    user_id: str
    valid: list[str]
    denied: list[object]


class SubscriptionService:
    """Owns users' topic subscriptions: the channel rules applied to them, the per-user
    cap, and the writes (grouped across concurrent requests)."""

    def __init__(self, db: Database, rules: ChannelRules) -> None:
        self._db = db
        self._rules = rules
        # A reconnect storm subscribes thousands of sockets at once: group commit them.
        self._batcher: Batcher[_SubscribeRequest, SubscriptionResult] = Batcher(
            self._write_batch, 500
        )

    async def subscribe(
        self, user_id: str, channels: Sequence[object], roles: frozenset[str] = frozenset()
    ) -> SubscriptionResult:
        """Subscribes to the channels the rules let this user (with these roles) join; the
        others come back in `denied`, in the order given."""
        verdicts = [(name, self._rules.may_join(name, user_id, roles)) for name in channels]
        valid = list(dict.fromkeys(n for n, ok in verdicts if ok and isinstance(n, str)))
        denied = [name for name, ok in verdicts if not ok]
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
        # Only a valid name can have been subscribed; the others (a NUL in one would fail
        # the query on PostgreSQL) are not, already.
        async with self._db.begin() as conn:
            await store.remove(conn, user_id, [name for name in names if is_name(name)])
        return names
