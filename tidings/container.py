"""The composition root: builds the object graph of one Tidings process from its settings,
and runs its life cycle. `build_core` makes what `tidings serve` and `tidings worker` share
(and picks the queue signal); `build_services` adds a serve node's services, its socket
gateway and the handlers' bundle. No globals: tests build as many independent instances
as they like."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tidings.api.bundle import ApiServices
from tidings.config.settings import Settings
from tidings.crypto.cipher import FieldCipher
from tidings.delivery_setup import Delivery, build_delivery
from tidings.queue.release import DueScheduler
from tidings.realtime.census import LocalCensus, node_name
from tidings.realtime.fanout import InProcessFanout
from tidings.realtime.gateway import SocketGateway
from tidings.realtime.lean import LeanTransport
from tidings.realtime.redis.census import RedisCensus
from tidings.realtime.redis.fanout import RedisFanout
from tidings.realtime.redis.links import build_links
from tidings.realtime.sio_transport import PythonSocketIOTransport
from tidings.realtime.transport import SocketTransport
from tidings.services.bulk import BulkCreationService
from tidings.services.cancels import CancelService
from tidings.services.catalogue import CatalogueService
from tidings.services.channel_rules import ChannelRules
from tidings.services.clicks import ClickService
from tidings.services.connections import ConnectionsService
from tidings.services.contacts import ContactService
from tidings.services.creation import CreationService
from tidings.services.dead_letters import DeadLetterService
from tidings.services.devices import DeviceService
from tidings.services.fanout import Fanout
from tidings.services.fanout_reads import FanoutReads
from tidings.services.feed_cache import FeedCache
from tidings.services.feeds import FeedService
from tidings.services.inbox import InboxService
from tidings.services.inbox_states import InboxStates
from tidings.services.preference_cache import PreferenceCache
from tidings.services.preference_centre import PreferenceCentre, catalogue_of
from tidings.services.preferences import PreferenceService
from tidings.services.rate_limits import RateLimits
from tidings.services.subscriptions import SubscriptionService
from tidings.services.template_cache import TemplateCache
from tidings.services.templates import TemplateService
from tidings.services.tokens import TokenService
from tidings.services.topics import TopicService
from tidings.services.type_cache import TypeCache
from tidings.services.unsubscribe import (
    UnsubscribeService,
)
from tidings.services.webhooks import WebhookService
from tidings.store.database import Database
from tidings.support.i18n import Messages
from tidings.support.metrics import Metrics
from tidings.support.tracing import Traces, from_environment
from tidings.templates.engine import TemplateEngine
from tidings.wakeup import Signal, Waiters
from tidings.wakeup.local import LocalSignal
from tidings.wakeup.postgres import PostgresRelay
from tidings.wakeup.redis import RedisRelay
from tidings.wakeup.relayed import RelayedSignal


@dataclass
class Core:
    """The parts `tidings serve` and `tidings worker` both run, built once per process:
    the database, the metrics, the cipher, the fan-out (None in a worker without Redis:
    no sockets to reach), the delivery worker, the scheduler (serve only), and the queue
    signal that wakes the loops of this process that run here (and carries the caches'
    invalidations: the preferences', the types catalogue's and the templates')."""

    settings: Settings
    db: Database
    metrics: Metrics
    cipher: FieldCipher | None
    fanout: Fanout | None
    delivery: Delivery
    scheduler: DueScheduler | None
    signal: Signal
    runs_worker: bool
    preference_cache: PreferenceCache
    type_cache: TypeCache
    template_cache: TemplateCache
    feed_cache: FeedCache
    traces: Traces
    messages: Messages  # the server's own words by language, read once per process

    async def start(self) -> None:
        await self.db.start()
        if self.fanout is not None:
            await self.fanout.start()
        await self.signal.start()
        if self.scheduler is not None:
            self.scheduler.start()
        if self.runs_worker:
            self.delivery.start()

    async def stop(self) -> None:
        await self.delivery.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        await self.signal.close()
        if self.fanout is not None:
            await self.fanout.close()
        await self.db.dispose()
        # The last spans (the sends just finished) go out before the process ends.
        await asyncio.to_thread(self.traces.shutdown)


def build_core(settings: Settings, *, serve: bool, traces: Traces | None = None) -> Core:
    """`serve`: a node with sockets and the scheduler, running the delivery worker if
    WORKERS_IN_SERVE; otherwise a `tidings worker` process (the delivery worker alone).
    `traces`: the tracer (default: the OTEL_* environment's, off without an endpoint)."""
    traces = traces if traces is not None else from_environment()
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    metrics = Metrics()
    cipher = build_cipher(settings)
    # Over Redis when REDIS_URL is set; in process on a single node; a worker without
    # Redis has no sockets to reach (clients learn its status changes by replay).
    fanout: Fanout | None = (build_redis_fanout(settings, db, metrics, cipher)
                             if settings.redis_url else InProcessFanout() if serve else None)
    type_cache = TypeCache(db, metrics)
    messages = Messages.load()
    delivery = build_delivery(settings, db, fanout, metrics, cipher, type_cache, traces,
                              messages)
    scheduler = DueScheduler(
        db, fanout, interval_s=settings.scheduler_interval_s,
        batch_size=settings.notification_batch_size, cipher=cipher, metrics=metrics,
    ) if serve and fanout is not None else None
    runs_worker = settings.workers_in_serve or not serve
    preference_cache = PreferenceCache(metrics)
    template_cache = TemplateCache(db, metrics)
    feed_cache = FeedCache(db, metrics)
    # A create that writes escalation steps wakes this process's steps' loop alone, and
    # only when a step falls due before its next poll (`EscalationRunner.wake`).
    stepping = delivery.escalation if runs_worker else None
    waiters = Waiters(queued=(delivery.worker.wake,) if runs_worker else (),
                      scheduled=(scheduler.wake,) if scheduler is not None else (),
                      escalated=(stepping.wake,) if stepping is not None else (),
                      invalidated=(preference_cache.invalidated, type_cache.invalidated,
                                   template_cache.invalidated, feed_cache.invalidated),
                      lost=(preference_cache.forget_all, type_cache.forget,
                            template_cache.forget_all, feed_cache.forget))
    return Core(settings, db, metrics, cipher, fanout, delivery, scheduler,
                build_signal(settings, db, metrics, waiters), runs_worker, preference_cache,
                type_cache, template_cache, feed_cache, traces, messages)


def build_signal(settings: Settings, db: Database, metrics: Metrics,
                 waiters: Waiters) -> Signal:
    """Over Redis when REDIS_URL is set; else over PostgreSQL's LISTEN/NOTIFY on a
    PostgreSQL database; else (SQLite: one node) in process."""
    if settings.redis_url:
        return RelayedSignal(waiters, RedisRelay(
            settings.redis_url, settings.redis_password, cluster=settings.redis_cluster,
            prefix=settings.redis_prefix, metrics=metrics), name="Redis")
    if db.dialect == "postgresql":
        return RelayedSignal(waiters, PostgresRelay(settings.database_url), name="PostgreSQL")
    return LocalSignal(waiters)


@dataclass
class Services:
    """One `tidings serve` node: the shared core, the services, the socket gateway."""

    core: Core
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
    census: LocalCensus | RedisCensus
    api: ApiServices

    async def start(self) -> None:
        await self.core.start()
        await self.census.start()

    async def stop(self) -> None:
        await self.census.close()
        await self.limits.close()
        await self.core.stop()


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


def build_census(settings: Settings, gateway: SocketGateway) -> LocalCensus | RedisCensus:
    """Who is connected: this node's sockets alone, or every node's over Redis."""
    if settings.redis_url:
        return RedisCensus(node_name(), gateway.counts, url=settings.redis_url,
                           password=settings.redis_password, cluster=settings.redis_cluster,
                           prefix=settings.redis_prefix)
    return LocalCensus(node_name(), gateway.counts)


def build_services(settings: Settings, traces: Traces | None = None) -> Services:
    """The object graph of a `tidings serve` node."""
    core = build_core(settings, serve=True, traces=traces)
    db, metrics, cipher, signal = core.db, core.metrics, core.cipher, core.signal
    fanout, scheduler = core.fanout, core.scheduler
    assert fanout is not None and scheduler is not None  # a serve node has both
    tokens = TokenService(settings)
    preferences = PreferenceService(db, core.preference_cache, signal)
    limits = RateLimits.from_settings(settings)
    subscriptions = SubscriptionService(db, ChannelRules(settings.channel_rules))
    inbox = InboxService(db, fanout, signal, cipher=cipher)
    templates = TemplateService(db, TemplateEngine(), core.template_cache, signal)
    creation = CreationService(db, fanout, preferences, metrics, signal,
                               deliverable=core.delivery.deliverable, cipher=cipher,
                               templates=templates, limit=limits.creates,
                               types=core.type_cache, traces=core.traces,
                               feeds=core.feed_cache)
    bulk = BulkCreationService(db, creation, cipher)
    gateway = SocketGateway(make_transport(settings), tokens, inbox, preferences,
                            subscriptions, metrics, limits, presence=fanout)
    fanout.attach(gateway)
    census = build_census(settings, gateway)
    contacts = ContactService(db, signal)
    centre = PreferenceCentre(db, settings, preferences, contacts,
                              catalogue=catalogue_of(core.type_cache))
    api = ApiServices(
        settings=settings, db=db, metrics=metrics, tokens=tokens, creation=creation,
        bulk=bulk, inbox=inbox, preferences=preferences,
        dead_letters=DeadLetterService(db, fanout, signal),
        webhooks=WebhookService(db, allow_private=settings.allow_private_targets),
        contacts=contacts, devices=DeviceService(db, settings),
        unsubscribe=UnsubscribeService(db, settings, preferences), templates=templates,
        types=CatalogueService(db, core.type_cache, signal),
        traces=core.traces,
        topics=TopicService(db),
        preference_centre=centre, messages=core.messages,
        feeds=FeedService(db, allow_private=settings.allow_private_targets,
                          cache=core.feed_cache, invalidation=signal),
        states=InboxStates(db, fanout, signal, cipher=cipher),
        cancels=CancelService(db, cipher=cipher),
        clicks=ClickService(db, settings, signal, cipher=cipher),
        connections=ConnectionsService(census),
    )
    return Services(
        core=core, settings=settings, db=db, fanout=fanout, metrics=metrics, tokens=tokens,
        creation=creation, bulk=bulk, inbox=inbox, preferences=preferences,
        subscriptions=subscriptions, scheduler=scheduler, gateway=gateway,
        delivery=core.delivery, dead_letters=api.dead_letters, webhooks=api.webhooks,
        contacts=api.contacts, devices=api.devices, unsubscribe=api.unsubscribe,
        templates=templates, limits=limits, census=census, api=api,
    )
