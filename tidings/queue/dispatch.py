"""One claimed delivery through its medium: build the message, hand it to the sender, and
turn the attempts into a settlement (sent, a retry, dead or skipped).

What a medium cannot do at all is `skipped`, never an error: no address, no device, no
provider configured. What a provider refuses for good is `dead` at once; what may pass is
retried by the policy until it is used up.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

from tidings.delivery.chat.message import ChatMessage
from tidings.delivery.messages import Email, Push, Sms, WebhookEvent
from tidings.delivery.outcome import Attempt, Outcome
from tidings.delivery.sms.sender import sms_text
from tidings.domain.delivery import DeliveryMedium
from tidings.domain.links import links_of, with_links
from tidings.domain.model import DeliveryStatus
from tidings.domain.notification import Notification
from tidings.domain.webhook import event_id
from tidings.queue.batch import BatchContext, Senders
from tidings.queue.chat import try_chat, try_chat_message
from tidings.queue.composing import parts_of, push_ttl, urgency, withdrawn
from tidings.queue.digest_layout import DigestLayout, plain_digest
from tidings.queue.email_footer import with_footer
from tidings.queue.retry import RetryPolicy
from tidings.queue.verdict import Verdicts
from tidings.store.queue import Claimed, Settlement
from tidings.support.i18n import Messages

SENT = DeliveryStatus.SENT
# (user_id, channel, type) -> the one-click unsubscribe URL for that user's emails of them.
UnsubscribeLink = Callable[[str, str, str], str]
# (channel, type) -> whether the types catalogue marks it required: its emails go through
# opt-outs, so they offer no one-click unsubscribe (it would change nothing).
RequiredType = Callable[[str, str], Awaitable[bool]]
# user_id -> the signed link to that user's preference centre.
PreferenceLink = Callable[[str], str]
# Where link N (0 its `url`, N its N-th action) of a notification points in an email: a
# tracked redirect (`/c/{token}`). None: straight to the stored URL (TRACK_CLICKS=false).
ClickLink = Callable[[str, int], str]
DEAD, SKIPPED = DeliveryStatus.DEAD, DeliveryStatus.SKIPPED


class Dispatcher:
    """Owns the rules of one try per medium; holds no state between tries."""

    def __init__(self, senders: Senders, policy: RetryPolicy, public_url: str,
                 clock: Callable[[], datetime], rng: random.Random | None = None,
                 unsubscribe_link: UnsubscribeLink | None = None,
                 digest_layout: DigestLayout = plain_digest,
                 preference_link: PreferenceLink | None = None,
                 messages: Messages | None = None,
                 required_type: RequiredType | None = None,
                 click_link: ClickLink | None = None) -> None:
        self._senders = senders
        self._required_type = required_type
        self._click_link = click_link
        # The preference centre (DESIGN section 11): linked in every email's footer (in
        # the recipient's language, from `messages`), and by a digest's layout.
        self._preference_link = preference_link
        self._messages = messages or Messages({})
        self._digest_layout = digest_layout
        self._unsubscribe_link = unsubscribe_link
        self._clock = clock
        self._verdicts = Verdicts(policy, clock, rng or random.Random())
        self._host = urlsplit(public_url).hostname or "localhost"

    async def run(self, claimed: Claimed, context: BatchContext) -> Settlement:
        if claimed.medium == DeliveryMedium.WEBHOOK:
            return await self._webhook(claimed, context)
        notification = context.notifications.get(claimed.notification_id)
        if notification is None:  # deleted by its user meanwhile
            return Settlement(claimed, SKIPPED, last_error="the notification was deleted")
        gone = withdrawn(notification, self._clock())
        if gone is not None:  # no medium carries it any more
            return Settlement(claimed, SKIPPED, last_error=gone)
        if claimed.medium == DeliveryMedium.EMAIL:
            return await self._email(claimed, notification, context)
        if claimed.medium == DeliveryMedium.PUSH:
            return await self._push(claimed, notification, context)
        if claimed.medium == DeliveryMedium.SMS:
            return await self._sms_out(claimed, parts_of(notification)["sms"], notification.id,
                                       context)
        if claimed.medium == DeliveryMedium.CHAT:
            tried = await try_chat(self._senders, claimed.user_id, notification, context)
            if isinstance(tried, str):
                return Settlement(claimed, SKIPPED, last_error=tried)
            return self._verdicts.targets(claimed, [tried], reached_before=False)
        return Settlement(claimed, DEAD, last_error=f"unknown medium {claimed.medium!r}")

    async def run_digest(self, claimed: Claimed, items: Sequence[Notification],
                         context: BatchContext) -> Settlement:
        """One message for a whole digest: `claimed` stands for all its deliveries (its
        `attempts` are the digest's tries), `items` are their notifications, oldest
        first. The settlement applies to every one of them."""
        link = self._preference_link(claimed.user_id) if self._preference_link else None
        parts = self._digest_layout(items, link, self._messages.for_locale(
            context.locales.get(claimed.user_id)))
        if claimed.medium == DeliveryMedium.EMAIL:
            sender = self._senders.email
            if sender is None:
                return Settlement(claimed, SKIPPED, last_error="no email provider is configured")
            address = context.emails.get(claimed.user_id)
            if address is None:
                return Settlement(claimed, SKIPPED, last_error="the user has no email address")
            topics = {(item.channel, item.type) for item in items}
            email = Email(
                to=address, subject=parts.subject, text=parts.text, html=parts.html,
                message_id=f"<digest.{claimed.id}.{items[0].id}@{self._host}>",
                # One click can turn off only one (channel, type): offered when all share it.
                unsubscribe_url=await self._unsubscribe(claimed.user_id, *next(iter(topics)))
                if len(topics) == 1 else None,
                idempotency_key=f"tidings-digest-{claimed.id}",
            )
            return self._verdicts.failover(claimed, await sender.send(email))
        if claimed.medium == DeliveryMedium.SMS:
            return await self._sms_out(claimed, parts.sms, items[-1].id, context)
        if claimed.medium == DeliveryMedium.CHAT:  # a user's direct messages, held back
            digest = ChatMessage(notification_id=items[-1].id, title=parts.subject,
                                 message=parts.push_body, channel=items[-1].channel,
                                 type=items[-1].type,
                                 priority=max((item.priority for item in items), key=urgency))
            tried = await try_chat_message(self._senders, claimed.user_id, digest, context)
            if isinstance(tried, str):
                return Settlement(claimed, SKIPPED, last_error=tried)
            return self._verdicts.targets(claimed, [tried], reached_before=False)
        push = Push(
            notification_id=items[-1].id, title=parts.subject, body=parts.push_body,
            data={"notification_ids": ",".join(item.id for item in items),
                  "count": str(len(items))},
            priority=max((item.priority for item in items), key=urgency),
            idempotency_key=f"tidings-digest-{claimed.id}",
        )
        return await self._push_out(claimed, push, context)

    async def _unsubscribe(self, user_id: str, channel: str, type_: str) -> str | None:
        """The one-click link for the user's emails of (channel, type); none for a
        required type, which goes through opt-outs."""
        if self._unsubscribe_link is None:
            return None
        if self._required_type is not None and await self._required_type(channel, type_):
            return None
        return self._unsubscribe_link(user_id, channel, type_)

    async def _push_out(self, claimed: Claimed, push: Push,
                        context: BatchContext) -> Settlement:
        """A built push to each of the user's reachable devices not reached before."""
        router = self._senders.push
        if router is None:
            return Settlement(claimed, SKIPPED, last_error="no push provider is configured")
        reached = context.reached.get(claimed.id, set())
        targets = [d for d in context.devices.get(claimed.user_id, ())
                   if d.id not in reached and router.configured(d.platform)]
        if not targets:
            if reached:
                return Settlement(claimed, SENT)
            return Settlement(claimed, SKIPPED,
                              last_error="the user has no device a provider can reach")
        attempts = await asyncio.gather(*(router.send(device, push) for device in targets))
        settlement = self._verdicts.targets(claimed, list(attempts),
                                            reached_before=bool(reached))
        gone = tuple(a.device_id for a in attempts if a.outcome is Outcome.GONE and a.device_id)
        return replace(settlement, gone=gone) if gone else settlement

    def unexpected(self, claimed: Claimed, exc: Exception) -> Settlement:
        """A failure no sender answered for (a bug): treated as transient, so the delivery
        is retried by the policy and ends as a dead letter rather than vanishing."""
        attempt = Attempt(Outcome.TRANSIENT, code="internal", error=type(exc).__name__)
        return self._verdicts.targets(claimed, [attempt], reached_before=False)

    async def _sms_out(self, claimed: Claimed, text: str, notification_id: str,
                       context: BatchContext) -> Settlement:
        sender = self._senders.sms
        if sender is None:
            return Settlement(claimed, SKIPPED, last_error="no sms provider is configured")
        phone = context.phones.get(claimed.user_id)
        if phone is None:
            return Settlement(claimed, SKIPPED, last_error="the user has no phone number")
        sms = Sms(to=phone, body=sms_text(text), notification_id=notification_id,
                  user_id=claimed.user_id, idempotency_key=f"tidings-delivery-{claimed.id}")
        return self._verdicts.failover(claimed, await sender.send(sms))

    # -- media ----------------------------------------------------------------------------

    async def _email(self, claimed: Claimed, notification: Notification,
                     context: BatchContext) -> Settlement:
        sender = self._senders.email
        if sender is None:
            return Settlement(claimed, SKIPPED, last_error="no email provider is configured")
        address = context.emails.get(claimed.user_id)
        if address is None:
            return Settlement(claimed, SKIPPED, last_error="the user has no email address")
        parts = with_links(parts_of(notification), links_of(
            notification.url, notification.actions, self._href(notification)))
        text: str = parts["text"]
        body: str | None = parts["html"]
        if self._preference_link:
            text, body = with_footer(text, body, self._preference_link(claimed.user_id),
                                     self._messages, context.locales.get(claimed.user_id))
        message = Email(
            to=address,
            subject=parts["subject"],
            text=text,
            html=body,
            message_id=f"<{claimed.id}.{notification.id}@{self._host}>",
            # One click turns email off for exactly this (channel, type) of this user.
            unsubscribe_url=await self._unsubscribe(claimed.user_id, notification.channel,
                                                    notification.type),
            idempotency_key=f"tidings-delivery-{claimed.id}",
        )
        return self._verdicts.failover(claimed, await sender.send(message))

    def _href(self, notification: Notification) -> Callable[[int], str]:
        def href(which: int) -> str:
            if self._click_link is not None:
                return self._click_link(notification.id, which)
            if which == 0:
                return notification.url or ""
            return str((notification.actions or [])[which - 1].get("url", ""))
        return href

    async def _push(self, claimed: Claimed, notification: Notification,
                    context: BatchContext) -> Settlement:
        parts = parts_of(notification)
        data = {"notification_id": notification.id, "channel": notification.channel,
                "type": notification.type}
        # The links, for apps and service workers that show them (push data values are
        # strings: the actions go as JSON).
        if notification.url:
            data["url"] = notification.url
        if notification.actions:
            data["actions"] = json.dumps(notification.actions, separators=(",", ":"))
        push = Push(
            notification_id=notification.id, title=parts["push_title"],
            body=parts["push_body"], data=data,
            priority=notification.priority, idempotency_key=f"tidings-delivery-{claimed.id}",
            ttl_s=push_ttl(notification, self._clock()),
        )
        return await self._push_out(claimed, push, context)

    async def _webhook(self, claimed: Claimed, context: BatchContext) -> Settlement:
        target = context.webhooks.get(claimed.webhook_id or "")
        sender = self._senders.webhooks
        if target is None or sender is None or not claimed.payload:
            return Settlement(claimed, SKIPPED, last_error="the webhook was removed")
        url, secret = target
        event = WebhookEvent(
            id=event_id(claimed.id), type=claimed.event or str(claimed.payload.get("type")),
            timestamp=int(claimed.created_at.timestamp()),
            data=claimed.payload.get("data", {}), url=url, secret=secret,
        )
        return self._verdicts.targets(claimed, [await sender.send(event)],
                                      reached_before=False)
