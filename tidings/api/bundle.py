"""What the HTTP handlers are given: the services they call, and the few things of the
process they read (the readiness probe, the metrics). Built by the composition root
(`container.py`); the handlers reach it through `deps.App`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tidings.config.settings import Settings
from tidings.services.bulk import BulkCreationService
from tidings.services.cancels import CancelService
from tidings.services.catalogue import CatalogueService
from tidings.services.clicks import ClickService
from tidings.services.connections import ConnectionsService
from tidings.services.contacts import ContactService
from tidings.services.creation import CreationService
from tidings.services.dead_letters import DeadLetterService
from tidings.services.devices import DeviceService
from tidings.services.feeds import FeedService
from tidings.services.inbox import InboxService
from tidings.services.inbox_states import InboxStates
from tidings.services.preference_centre import PreferenceCentre
from tidings.services.preferences import PreferenceService
from tidings.services.templates import TemplateService
from tidings.services.tokens import TokenService
from tidings.services.topics import TopicService
from tidings.services.unsubscribe import UnsubscribeService
from tidings.services.webhooks import WebhookService
from tidings.support.i18n import Messages
from tidings.support.metrics import Metrics
from tidings.support.tracing import Traces


class Pingable(Protocol):
    """The database, as `/ready` sees it."""

    async def ping(self) -> None:
        """Returns when the database answers; raises when it does not."""


@dataclass(frozen=True, slots=True)
class ApiServices:
    """The handlers' bundle (one per application instance)."""

    settings: Settings
    db: Pingable
    metrics: Metrics
    tokens: TokenService
    creation: CreationService
    bulk: BulkCreationService
    inbox: InboxService
    preferences: PreferenceService
    dead_letters: DeadLetterService
    webhooks: WebhookService
    contacts: ContactService
    devices: DeviceService
    unsubscribe: UnsubscribeService
    templates: TemplateService
    types: CatalogueService
    traces: Traces
    topics: TopicService
    preference_centre: PreferenceCentre
    messages: Messages  # the server's own words, by language
    feeds: FeedService
    states: InboxStates
    cancels: CancelService
    clicks: ClickService
    connections: ConnectionsService  # who is connected, on every node
