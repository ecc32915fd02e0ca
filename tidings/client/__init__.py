"""The Python client of Tidings.

Producers: `TidingsClient` (blocking) and `AsyncTidingsClient` (asyncio) over the HTTP
API, with idempotent retries. Users: `Inbox` / `inbox()`, live notifications over
Socket.IO that survive reconnects (needs `pip install 'tidings[client]'`)."""

from tidings.client.calls import Page
from tidings.client.catalogue import NotificationType, TypePage
from tidings.client.connections import Connections, NodeConnections, UserSockets
from tidings.client.consumer import Inbox, inbox
from tidings.client.errors import (
    AuthenticationError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    SubscriptionLimit,
    TidingsError,
    Unavailable,
    ValidationError,
)
from tidings.client.feeds import FeedPage, TeamFeed
from tidings.client.models import (
    Accepted,
    BatchResult,
    Broadcast,
    CreateResult,
    Delivery,
    InboxChange,
    Notification,
    NotificationRequest,
    Preference,
    Rejected,
    StatusChange,
)
from tidings.client.producer import AsyncTidingsClient, TidingsClient
from tidings.client.retry import RetryPolicy
from tidings.client.topics import (
    ChannelSize,
    NamePage,
    Subscriber,
    SubscriberCounts,
    Subscription,
)

__all__ = [
    "Accepted",
    "AsyncTidingsClient",
    "AuthenticationError",
    "BatchResult",
    "Broadcast",
    "ChannelSize",
    "Conflict",
    "Connections",
    "CreateResult",
    "Delivery",
    "FeedPage",
    "Inbox",
    "InboxChange",
    "NamePage",
    "NodeConnections",
    "NotFound",
    "Notification",
    "NotificationRequest",
    "NotificationType",
    "Page",
    "PayloadTooLarge",
    "PermissionDenied",
    "Preference",
    "RateLimited",
    "Rejected",
    "RetryPolicy",
    "StatusChange",
    "Subscriber",
    "SubscriberCounts",
    "Subscription",
    "SubscriptionLimit",
    "TeamFeed",
    "TidingsClient",
    "TidingsError",
    "TypePage",
    "Unavailable",
    "UserSockets",
    "ValidationError",
    "inbox",
]
