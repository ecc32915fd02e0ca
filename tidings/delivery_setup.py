"""The delivery worker and the provider clients it sends through, built from `Settings`:
the part of the composition root that `tidings serve` and `tidings worker` build alike
(`container.py` calls it)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import httpx

from tidings.config.settings import Settings
from tidings.crypto.cipher import FieldCipher
from tidings.delivery.chat.feeds import FeedSender
from tidings.delivery.chat.slack import SlackDirectSender
from tidings.delivery.email.sender import build_email_failover
from tidings.delivery.push.router import build_push_senders
from tidings.delivery.sms.sender import build_sms_failover
from tidings.delivery.tls import default_tls
from tidings.delivery.webhooks.sender import WebhookSender
from tidings.domain.model import Medium, utcnow
from tidings.jobs.maintenance import Maintenance
from tidings.queue.batch import Senders
from tidings.queue.dispatch import Dispatcher
from tidings.queue.escalation import EscalationRunner
from tidings.queue.ports import Sockets
from tidings.queue.retry import RetryPolicy
from tidings.queue.worker import DeliveryWorker
from tidings.services.clicks import click_key, click_url, mint_click
from tidings.services.preference_centre import link_key, mint_link_token, preferences_url
from tidings.services.type_cache import TypeCache
from tidings.services.unsubscribe import mint_token, signing_key, unsubscribe_url
from tidings.store.database import Database
from tidings.support.i18n import Messages
from tidings.support.metrics import Metrics
from tidings.support.tracing import Traces


@dataclass
class Delivery:
    """The delivery worker and the provider clients it sends through."""

    worker: DeliveryWorker
    senders: Senders
    http: httpx.AsyncClient
    escalation: EscalationRunner | None = None  # due escalation steps, beside the worker
    closed: bool = field(default=False)

    def start(self) -> None:
        self.worker.start()
        if self.escalation is not None:
            self.escalation.start()

    @property
    def deliverable(self) -> frozenset[Medium]:
        """The media a provider is configured for (in-app needs none)."""
        configured = {Medium.IN_APP}
        if self.senders.email is not None:
            configured.add(Medium.EMAIL)
        if self.senders.push is not None:
            configured.add(Medium.PUSH)
        if self.senders.sms is not None:
            configured.add(Medium.SMS)
        if self.senders.slack is not None:  # a user's chat; team feeds need no setting
            configured.add(Medium.CHAT)
        return frozenset(configured)

    async def stop(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.escalation is not None:
            await self.escalation.stop()
        await self.worker.stop()
        for sender in (self.senders.email, self.senders.push, self.senders.webhooks,
                       self.senders.sms):
            if sender is not None:
                await sender.close()
        await self.http.aclose()


def build_delivery(settings: Settings, db: Database, fanout: Sockets | None,
                   metrics: Metrics, cipher: FieldCipher | None,
                   types: TypeCache | None = None,
                   traces: Traces | None = None,
                   messages: Messages | None = None) -> Delivery:
    """The delivery worker with a sender for every configured provider (a provider that
    is configured wrongly stops start-up, naming the setting)."""
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False,
                             verify=default_tls())
    # Every send ends well inside its lease, so a slow provider never lets another
    # worker take a delivery that is still being sent.
    timeout_s = max(1.0, min(30.0, settings.delivery_lease_seconds / 3))
    push = build_push_senders(settings, http)
    senders = Senders(
        email=build_email_failover(settings, http, timeout_s=timeout_s),
        push=push if push.any_configured() else None,
        webhooks=WebhookSender(http, allow_private=settings.allow_private_targets,
                               timeout_s=timeout_s, traces=traces),
        sms=build_sms_failover(settings, http, timeout_s=timeout_s),
        slack=SlackDirectSender(http, settings.slack_bot_token,
                                endpoint=settings.slack_endpoint, timeout_s=timeout_s)
        if settings.slack_bot_token else None,
        feeds=FeedSender(http, allow_private=settings.allow_private_targets,
                         timeout_s=timeout_s, traces=traces),
    )
    policy = RetryPolicy(settings.max_retry_attempts,
                         tuple(ms / 1000 for ms in settings.retry_delays_ms))
    key = signing_key(settings)

    def unsubscribe_link(user_id: str, channel: str, type_: str) -> str:
        return unsubscribe_url(settings.public_url, mint_token(key, user_id, channel, type_))

    preference_key = link_key(settings)

    def preference_link(user_id: str) -> str:
        return preferences_url(settings.public_url, mint_link_token(preference_key, user_id))

    clicks = click_key(settings)

    def click_link(notification_id: str, which: int) -> str:
        return click_url(settings.public_url, mint_click(clicks, notification_id, which))

    dispatcher = Dispatcher(senders, policy, settings.public_url, utcnow, random.Random(),
                            unsubscribe_link, preference_link=preference_link,
                            messages=messages if messages is not None else Messages.load(),
                            required_type=types.required if types is not None else None,
                            click_link=click_link if settings.track_clicks else None)
    worker = DeliveryWorker(
        db, fanout, dispatcher, metrics,
        batch_size=settings.notification_batch_size,
        lease_s=settings.delivery_lease_seconds,
        poll_s=settings.scheduler_interval_s,
        cipher=cipher,
        maintenance=Maintenance(db, retention_days=settings.retention_days, metrics=metrics),
        throttle_per_hour=settings.throttle_per_hour,
        devices_per_user=settings.max_devices_per_user,
        traces=traces,
    )
    delivery = Delivery(worker, senders, http)
    delivery.escalation = EscalationRunner(
        db, deliverable=delivery.deliverable, lease_s=settings.delivery_lease_seconds,
        poll_s=settings.scheduler_interval_s, batch_size=settings.notification_batch_size,
        queued=worker.wake, metrics=metrics)
    return delivery
