"""Topics managed by producers: a service or an admin subscribes users to a channel, ends
their subscriptions, and lists who is subscribed to what.

- The channel rules (`channel_rules.py`) are not applied: they judge what a user may join
  with their own token, and a producer is trusted. The name itself is still judged as in
  the Socket.IO `subscribe` (`domain/fields.py`), so room names such as `user:bob` never
  become topics.
- The per-user cap (`MAX_SUBSCRIPTIONS`) holds for producer adds as for a user's own
  subscribe: a change that would take any user past it changes nothing and answers a 409
  naming those users (never a silent subset: a producer must know who did not get the
  topic). Users already subscribed do not count against it (a repeat is a no-op).
- The room `channel:<name>` is the set of connected sockets of the channel's
  subscribers: a channel notification is one stored copy per subscriber, read from this
  table in the create's own transaction and emitted through each user's room, on
  whichever node holds their sockets (`realtime/gateway.py`, `SocketGateway.deliver`).
  So once a change commits, every connected socket of an added user, on every node,
  receives the channel's next create, and a removed user's do not: there is no second
  membership to update, on this node or any other.
"""

from __future__ import annotations

from tidings.domain.errors import Forbidden
from tidings.domain.model import Principal, utcnow
from tidings.domain.topics import (
    ChannelSize,
    NamePage,
    Subscriber,
    SubscriberChange,
    SubscriberCounts,
    Subscription,
    SubscriptionLimitReached,
    decode_name_cursor,
    encode_name_cursor,
)
from tidings.services.subscriptions import MAX_SUBSCRIPTIONS
from tidings.store import subscriptions as store
from tidings.store.database import Database


def _producer(caller: Principal) -> None:
    if not caller.may_create:
        raise Forbidden("managing topic subscribers needs the role 'service' or 'admin'")


class TopicService:
    """The producer's side of topic subscriptions (a user's own side:
    `SubscriptionService`)."""

    def __init__(self, db: Database, cap: int = MAX_SUBSCRIPTIONS) -> None:
        self._db = db
        self._cap = cap

    async def change(self, caller: Principal, channel: str,
                     change: SubscriberChange) -> SubscriberCounts:
        """Adds and removes in one transaction: all of it, or (over the cap) none."""
        _producer(caller)
        add, remove = change.checked()
        async with self._db.begin() as conn:
            fresh = add
            if add:
                have = await store.subscribed_among(conn, channel, add)
                fresh = [user_id for user_id in add if user_id not in have]
            if fresh:
                counts = await store.counts_of_users(conn, fresh)
                over = [user_id for user_id in fresh if counts.get(user_id, 0) >= self._cap]
                if over:
                    raise SubscriptionLimitReached(over, self._cap)
            # The counts are what the statements did, so a concurrent change of the same
            # users is counted once, by whichever commits its row.
            # In one order for every writer: two changes of the same users on PostgreSQL
            # then wait for each other instead of deadlocking.
            added = await store.subscribe_users(conn, channel, sorted(fresh), utcnow())
            removed = await store.unsubscribe_users(conn, channel, sorted(remove))
        return SubscriberCounts(added, removed)

    async def subscribers(self, caller: Principal, channel: str, limit: int,
                          cursor: str | None) -> NamePage[Subscriber]:
        _producer(caller)
        after = decode_name_cursor(cursor) if cursor else None
        async with self._db.begin() as conn:
            items = await store.subscribers_page(conn, channel, after, limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return NamePage(items, encode_name_cursor(items[-1].user_id) if more else None)

    async def channels(self, caller: Principal, limit: int,
                       cursor: str | None) -> NamePage[ChannelSize]:
        _producer(caller)
        after = decode_name_cursor(cursor) if cursor else None
        async with self._db.begin() as conn:
            items = await store.channels_page(conn, after, limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return NamePage(items, encode_name_cursor(items[-1].channel) if more else None)

    async def subscriptions_of(self, caller: Principal) -> list[Subscription]:
        """The caller's own subscriptions, whoever made them."""
        async with self._db.begin() as conn:
            return await store.subscriptions_of(conn, caller.user_id)
