"""A chat delivery's one try: a team feed's post when the delivery is the feed copy's
(user id `FEED_USER`), else the user's Slack direct message. What cannot be done at all is
`skipped`: no Slack token configured, a user without a Slack member id, a feed removed
since the create."""

from __future__ import annotations

from tidings.delivery.chat.message import ChatMessage, Feed, Link
from tidings.delivery.outcome import Attempt
from tidings.domain.feed import FEED_USER
from tidings.domain.notification import Notification
from tidings.queue.batch import BatchContext, Senders


def chat_message(notification: Notification) -> ChatMessage:
    actions = tuple(Link(str(a.get("label", "")), str(a.get("url", "")))
                    for a in notification.actions or () if a.get("url"))
    return ChatMessage(
        notification_id=notification.id, title=notification.title,
        message=notification.message, channel=notification.channel, type=notification.type,
        priority=notification.priority, url=notification.url, actions=actions)


async def try_chat(senders: Senders, user_id: str, notification: Notification,
                   context: BatchContext) -> Attempt | str:
    """The attempt, or why it cannot be made (the delivery is then skipped)."""
    return await try_chat_message(senders, user_id, chat_message(notification), context)


async def try_chat_message(senders: Senders, user_id: str, message: ChatMessage,
                           context: BatchContext) -> Attempt | str:
    """As `try_chat`, for a message already built (a digest's)."""
    if user_id == FEED_USER:
        feed = context.feeds.get(message.channel)
        if feed is None or senders.feeds is None:
            return "the channel's team feed was removed"
        return await senders.feeds.send(message, Feed(feed.kind, feed.webhook_url))
    if senders.slack is None:
        return "no chat provider is configured"
    member = context.slack_ids.get(user_id)
    if member is None:
        return "the user has no Slack member id"
    return await senders.slack.send(message, member)
