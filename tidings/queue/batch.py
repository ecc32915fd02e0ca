"""What the dispatcher works with: the reads a batch of claimed deliveries needs, done
at once (`context.load_context`), and the senders of every configured provider."""

from __future__ import annotations

from dataclasses import dataclass, field

from tidings.delivery.chat.feeds import FeedSender
from tidings.delivery.chat.slack import SlackDirectSender
from tidings.delivery.failover import Failover
from tidings.delivery.messages import Device, Email, Sms
from tidings.delivery.push.router import PushRouter
from tidings.delivery.webhooks.sender import WebhookSender
from tidings.domain.feed import ChannelFeed
from tidings.domain.notification import Notification
from tidings.domain.pacing import Quiet


@dataclass
class BatchContext:
    """What a batch of claimed deliveries needs from the database, read at once."""

    notifications: dict[str, Notification] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    phones: dict[str, str] = field(default_factory=dict)  # E.164, for SMS
    devices: dict[str, list[Device]] = field(default_factory=dict)
    reached: dict[int, set[str]] = field(default_factory=dict)  # push: devices already sent
    webhooks: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (url, secret)
    quiet: dict[str, Quiet] = field(default_factory=dict)  # user -> quiet hours and zone
    locales: dict[str, str] = field(default_factory=dict)  # user -> contact's locale
    slack_ids: dict[str, str] = field(default_factory=dict)  # user -> Slack member id
    feeds: dict[str, ChannelFeed] = field(default_factory=dict)  # channel -> its team feed


@dataclass(frozen=True, slots=True)
class Senders:
    """Email and SMS go through their providers in failover order; chat is a Slack
    direct message (with SLACK_BOT_TOKEN) or a team feed's post (always possible)."""

    email: Failover[Email] | None = None
    push: PushRouter | None = None
    webhooks: WebhookSender | None = None
    sms: Failover[Sms] | None = None
    slack: SlackDirectSender | None = None
    feeds: FeedSender | None = None
