"""Builds the object graph of one Tidings instance from its settings, and runs its life
cycle. No globals: tests build as many independent instances as they like."""

from __future__ import annotations

from dataclasses import dataclass

from tidings.delivery.scheduler import DueScheduler
from tidings.metrics import Metrics
from tidings.realtime.fanout import Fanout, InProcessFanout
from tidings.realtime.gateway import SocketGateway
from tidings.realtime.lean import LeanTransport
from tidings.realtime.sio_transport import PythonSocketIOTransport
from tidings.realtime.transport import SocketTransport
from tidings.services.channel_rules import ChannelRules
from tidings.services.creation import CreationService
from tidings.services.inbox import InboxService
from tidings.services.preferences import PreferenceService
from tidings.services.rate_limits import RateLimits
from tidings.services.subscriptions import SubscriptionService
from tidings.services.tokens import TokenService
from tidings.settings import Settings
from tidings.store.database import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    fanout: Fanout
    metrics: Metrics
    tokens: TokenService
    creation: CreationService
    inbox: InboxService
    preferences: PreferenceService
    subscriptions: SubscriptionService
    scheduler: DueScheduler
    gateway: SocketGateway
    limits: RateLimits

    async def start(self) -> None:
        await self.db.start()
        await self.fanout.start()
        self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.fanout.close()
        await self.limits.close()
        await self.db.dispose()


def make_transport(settings: Settings) -> SocketTransport:
    """The Socket.IO server implementation the settings ask for."""
    if settings.realtime_transport == "lean":
        return LeanTransport(settings)
    return PythonSocketIOTransport(settings)


def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    fanout = InProcessFanout()
    metrics = Metrics()
    tokens = TokenService(settings)
    preferences = PreferenceService(db)
    limits = RateLimits.from_settings(settings)
    subscriptions = SubscriptionService(db, ChannelRules(settings.channel_rules))
    inbox = InboxService(db, fanout)
    scheduler = DueScheduler(
        db, fanout,
        interval_s=settings.scheduler_interval_s,
        batch_size=settings.notification_batch_size,
    )
    creation = CreationService(db, fanout, preferences, metrics, on_scheduled=scheduler.wake)
    gateway = SocketGateway(make_transport(settings), tokens, inbox, preferences,
                            subscriptions, metrics, limits)
    fanout.attach(gateway)
    return Services(
        settings=settings, db=db, fanout=fanout, metrics=metrics, tokens=tokens,
        creation=creation, inbox=inbox, preferences=preferences,
        subscriptions=subscriptions, scheduler=scheduler, gateway=gateway, limits=limits,
    )
