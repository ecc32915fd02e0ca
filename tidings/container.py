"""Builds the object graph of one Tidings instance from its settings, and runs its life
cycle. No globals: tests build as many independent instances as they like."""

from __future__ import annotations

from dataclasses import dataclass

from tidings.delivery.scheduler import DueScheduler
from tidings.metrics import Metrics
from tidings.realtime.fanout import Fanout, InProcessFanout
from tidings.services.notifications import NotificationService
from tidings.services.preferences import PreferenceService
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
    notifications: NotificationService
    preferences: PreferenceService
    subscriptions: SubscriptionService
    scheduler: DueScheduler

    async def start(self) -> None:
        await self.db.start()
        await self.fanout.start()
        self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.fanout.close()
        await self.db.dispose()


def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    fanout = InProcessFanout()
    metrics = Metrics()
    preferences = PreferenceService(db)
    notifications = NotificationService(db, fanout, preferences, metrics)
    scheduler = DueScheduler(
        notifications,
        interval_s=settings.scheduler_interval_s,
        batch_size=settings.notification_batch_size,
    )
    notifications.on_scheduled = scheduler.wake
    return Services(
        settings=settings,
        db=db,
        fanout=fanout,
        metrics=metrics,
        tokens=TokenService(settings),
        notifications=notifications,
        preferences=preferences,
        subscriptions=SubscriptionService(db),
        scheduler=scheduler,
    )
