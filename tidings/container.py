"""Builds the object graph of one Tidings instance from its settings, and runs its life
cycle. No globals: tests build as many independent instances as they like."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import httpx

from tidings.config.settings import Settings
from tidings.crypto.cipher import FieldCipher
from tidings.delivery.email.sender import build_email_sender
from tidings.delivery.push.router import build_push_senders
from tidings.delivery.tls import default_tls
from tidings.delivery.webhooks.sender import WebhookSender
from tidings.domain.model import Medium, utcnow
from tidings.jobs.maintenance import Maintenance
from tidings.queue.dispatch import Dispatcher, Senders
from tidings.queue.release import DueScheduler
from tidings.queue.retry import RetryPolicy
from tidings.queue.worker import DeliveryWorker
from tidings.realtime.fanout import InProcessFanout
from tidings.realtime.gateway import SocketGateway
from tidings.realtime.lean import LeanTransport
from tidings.realtime.redis.fanout import RedisFanout
from tidings.realtime.redis.links import build_links
from tidings.realtime.sio_transport import PythonSocketIOTransport
from tidings.realtime.transport import SocketTransport
from tidings.services.bulk import BulkCreationService
from tidings.services.channel_rules import ChannelRules
from tidings.services.contacts import ContactService
from tidings.services.creation import CreationService
from tidings.services.dead_letters import DeadLetterService
from tidings.services.devices import DeviceService
from tidings.services.fanout import Fanout
from tidings.services.fanout_reads import FanoutReads
from tidings.services.inbox import InboxService
from tidings.services.preferences import PreferenceService
from tidings.services.rate_limits import RateLimits
from tidings.services.subscriptions import SubscriptionService
from tidings.services.templates import TemplateService
from tidings.services.tokens import TokenService
from tidings.services.unsubscribe import (
    UnsubscribeService,
    mint_token,
    signing_key,
    unsubscribe_url,
)
from tidings.services.webhooks import WebhookService
from tidings.store.database import Database
from tidings.support.metrics import Metrics
from tidings.templates.engine import TemplateEngine


@dataclass
class Services:
    settings: Settings
    db: Database
    fanout: Fanout
    metrics: Metrics
    tokens: TokenService
    creation: CreationService
    bulk: BulkCreationService
    inbox: InboxService
    preferences: PreferenceService
    subscriptions: SubscriptionService
    scheduler: DueScheduler
    gateway: SocketGateway
    delivery: Delivery
    dead_letters: DeadLetterService
    webhooks: WebhookService
    contacts: ContactService
    devices: DeviceService
    unsubscribe: UnsubscribeService
    limits: RateLimits
    templates: TemplateService

    async def start(self) -> None:
        await self.db.start()
        await self.fanout.start()
        self.scheduler.start()
        if self.settings.workers_in_serve:
            self.delivery.worker.start()

    async def stop(self) -> None:
        await self.delivery.stop()
        await self.scheduler.stop()
        await self.fanout.close()
        await self.limits.close()
        await self.db.dispose()


@dataclass
class Delivery:
    """The delivery worker and the provider clients it sends through."""

    worker: DeliveryWorker
    senders: Senders
    http: httpx.AsyncClient
    closed: bool = field(default=False)

    @property
    def deliverable(self) -> frozenset[Medium]:
        """The media a provider is configured for (in-app needs none)."""
        configured = {Medium.IN_APP}
        if self.senders.email is not None:
            configured.add(Medium.EMAIL)
        if self.senders.push is not None:
            configured.add(Medium.PUSH)
        return frozenset(configured)

    async def stop(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.worker.stop()
        for sender in (self.senders.email, self.senders.push, self.senders.webhooks):
            if sender is not None:
                await sender.close()
        await self.http.aclose()


def build_delivery(settings: Settings, db: Database, fanout: Fanout | None,
                   metrics: Metrics) -> Delivery:
    """The delivery worker with a sender for every configured provider (a provider that
    is configured wrongly stops start-up, naming the setting)."""
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False,
                             verify=default_tls())
    # Every send ends well inside its lease, so a slow provider never lets another
    # worker take a delivery that is still being sent.
    timeout_s = max(1.0, min(30.0, settings.delivery_lease_seconds / 3))
    push = build_push_senders(settings, http)
    senders = Senders(
        email=build_email_sender(settings, http, timeout_s=timeout_s),
        push=push if push.any_configured() else None,
        webhooks=WebhookSender(http, allow_private=settings.allow_private_targets,
                               timeout_s=timeout_s),
    )
    policy = RetryPolicy(settings.max_retry_attempts,
                         tuple(ms / 1000 for ms in settings.retry_delays_ms))
    key = signing_key(settings)

    def unsubscribe_link(user_id: str, channel: str, type_: str) -> str:
        return unsubscribe_url(settings.public_url, mint_token(key, user_id, channel, type_))

    dispatcher = Dispatcher(senders, policy, settings.public_url, utcnow, random.Random(),
                            unsubscribe_link)
    worker = DeliveryWorker(
        db, fanout, dispatcher, metrics,
        batch_size=settings.notification_batch_size,
        lease_s=settings.delivery_lease_seconds,
        poll_s=settings.scheduler_interval_s,
        cipher=build_cipher(settings),
        maintenance=Maintenance(db, retention_days=settings.retention_days),
        throttle_per_hour=settings.throttle_per_hour,
        devices_per_user=settings.max_devices_per_user,
    )
    return Delivery(worker, senders, http)


def build_cipher(settings: Settings) -> FieldCipher | None:
    """The cipher for the parts producers mark sensitive; None without keys."""
    keyring = settings.keyring()
    return FieldCipher(keyring) if keyring is not None else None


def make_transport(settings: Settings) -> SocketTransport:
    """The Socket.IO server implementation the settings ask for."""
    if settings.realtime_transport == "lean":
        return LeanTransport(settings)
    return PythonSocketIOTransport(settings)


def build_redis_fanout(settings: Settings, db: Database, metrics: Metrics,
                       cipher: FieldCipher | None = None) -> RedisFanout:
    """The fan-out between nodes (REDIS_URL set)."""
    links = build_links(settings.redis_url, settings.redis_password, settings.redis_cluster)
    return RedisFanout(
        links, FanoutReads(db, cipher), metrics, prefix=settings.redis_prefix,
        max_event_bytes=settings.max_event_bytes, poll_s=settings.scheduler_interval_s,
        linger_s=settings.redis_unsubscribe_after_s,
        buffer_size=settings.redis_receive_buffer,
    )


def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    metrics = Metrics()
    cipher = build_cipher(settings)
    # In process on a single node; over Redis when REDIS_URL is set.
    redis = build_redis_fanout(settings, db, metrics, cipher) if settings.redis_url else None
    fanout: Fanout = redis or InProcessFanout()
    tokens = TokenService(settings)
    preferences = PreferenceService(db)
    limits = RateLimits.from_settings(settings)
    subscriptions = SubscriptionService(db, ChannelRules(settings.channel_rules))
    delivery = build_delivery(settings, db, fanout, metrics)
    worker = delivery.worker

    def queued() -> None:
        """Deliveries were written: this process's worker and every other one look now."""
        worker.wake()
        fanout.wake_workers()

    if redis is not None and settings.workers_in_serve:
        redis.on_wake(worker.wake)  # creates on other nodes
    inbox = InboxService(db, fanout, on_queued=queued, cipher=cipher)
    scheduler = DueScheduler(
        db, fanout,
        interval_s=settings.scheduler_interval_s,
        batch_size=settings.notification_batch_size,
        cipher=cipher,
    )
    templates = TemplateService(db, TemplateEngine())
    creation = CreationService(db, fanout, preferences, metrics, on_scheduled=scheduler.wake,
                               on_queued=queued,
                               deliverable=delivery.deliverable, cipher=cipher,
                               templates=templates, limit=limits.creates)
    bulk = BulkCreationService(db, creation, cipher)
    gateway = SocketGateway(make_transport(settings), tokens, inbox, preferences,
                            subscriptions, metrics, limits, presence=fanout)
    fanout.attach(gateway)
    return Services(
        settings=settings, db=db, fanout=fanout, metrics=metrics, tokens=tokens,
        creation=creation, bulk=bulk, inbox=inbox, preferences=preferences,
        subscriptions=subscriptions, scheduler=scheduler, gateway=gateway,
        delivery=delivery,
        dead_letters=DeadLetterService(db, fanout, on_due=queued),
        webhooks=WebhookService(db, allow_private=settings.allow_private_targets),
        contacts=ContactService(db, on_due=queued), devices=DeviceService(db, settings),
        unsubscribe=UnsubscribeService(db, settings), templates=templates,
        limits=limits,
    )
