"""The answers of the routes operators and producers manage things with, as the OpenAPI
document describes them: deliveries and dead letters, webhooks, templates, the types
catalogue, topics and team feeds (the notifications' own are in `schemas.py`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class AttemptOut(BaseModel):
    at: str
    outcome: str
    code: str | None
    error: str | None
    provider_id: str | None
    device_id: str | None
    elapsed_ms: int
    provider: str | None


class DeliveryOut(BaseModel):
    id: int
    notification_id: str
    user_id: str | None  # null: a team feed's post
    medium: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: str
    updated_at: str
    provider_message_id: str | None
    step: int = Field(..., ge=0, le=3, description="0: the create's own media (and webhook "
                      "events); 1-3: the escalation step that made it")
    webhook_id: str | None = None  # webhook events only
    event: str | None = None  # webhook events only


class DeliveryPageOut(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class DeliveryDetailOut(DeliveryOut):
    history: list[AttemptOut]


class ReplayCountOut(BaseModel):
    count: int
    more: bool
    dry_run: bool


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: str


class WebhookCreatedOut(WebhookOut):
    secret: str


class WebhookPageOut(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None

class TemplateSummaryOut(BaseModel):
    key: str
    version: int
    default_locale: str
    locales: list[str]
    updated_at: str


class TemplateOut(TemplateSummaryOut):
    variants: dict[str, dict[str, str]]
    created_by: str


class TemplatePageOut(BaseModel):
    items: list[TemplateSummaryOut]
    next_cursor: str | None


class PreviewOut(BaseModel):
    locale: str
    version: int
    parts: dict[str, str]


class EscalationStepOut(BaseModel):
    after_seconds: int
    unless: str
    media: list[str]


class TypeDigestOut(BaseModel):
    key: str
    window_seconds: int


class TypeOut(BaseModel):
    channel: str
    type: str
    name: dict[str, str]
    description: dict[str, str] | None
    required: bool
    default_media: list[str] | None
    escalation: list[EscalationStepOut] | None
    digest: TypeDigestOut | None
    updated_by: str
    updated_at: str


class TypePageOut(BaseModel):
    items: list[TypeOut]
    next_cursor: str | None


class SubscriberCountsOut(BaseModel):
    added: int
    removed: int


class SubscriberOut(BaseModel):
    user_id: str
    since: datetime


class SubscriberPageOut(BaseModel):
    items: list[SubscriberOut]
    next_cursor: str | None


class ChannelSizeOut(BaseModel):
    channel: str
    subscribers: int


class ChannelPageOut(BaseModel):
    items: list[ChannelSizeOut]
    next_cursor: str | None


class SubscriptionOut(BaseModel):
    channel: str
    since: datetime


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class FeedOut(BaseModel):
    channel: str
    kind: str
    webhook_url: str
    created_at: str
    updated_at: str


class FeedPageOut(BaseModel):
    items: list[FeedOut]
    next_cursor: str | None


class UserSocketsOut(BaseModel):
    user_id: str
    sockets: int


class NodeConnectionsOut(BaseModel):
    node: str
    connections: int
    users_total: int = Field(..., description="every user with a socket on the node")
    users: list[UserSocketsOut] = Field(..., description="most sockets first, at most "
                                        "`limit`")


class ConnectionsOut(BaseModel):
    connections: int = Field(..., description="open sockets on every node listed")
    nodes: list[NodeConnectionsOut]
    partial: bool = Field(..., description="true: Redis could not be read, only the "
                          "answering node is listed")
