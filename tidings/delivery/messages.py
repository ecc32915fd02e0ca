"""What the delivery queue hands to a sender: plain records, already rendered, carrying
everything a provider request needs and nothing of the database. The push `Device` and its
`Platform` belong to the domain and are named here for the senders' convenience."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tidings.domain.device import Device, Platform

__all__ = ["Device", "Email", "Platform", "Push", "Sms", "WebhookEvent"]


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    text: str
    html: str | None
    # The same on every attempt of one delivery, so receivers can de-duplicate:
    # "<{delivery id}.{notification id}@{host}>".
    message_id: str
    # `{PUBLIC_URL}/unsubscribe/{token}`: List-Unsubscribe + List-Unsubscribe-Post (RFC
    # 8058). None: no one-click header.
    unsubscribe_url: str | None = None
    # An idempotency key for HTTP email services (stable across attempts).
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class Push:
    notification_id: str
    title: str
    body: str
    # Small key/value data for the app (FCM wants string values; senders convert).
    data: Mapping[str, Any] = field(default_factory=dict)
    priority: str = "medium"  # the notification's priority: low|medium|high|critical
    ttl_s: int = 86_400
    # Stable across attempts: apns-id / an idempotency key for HTTP push services.
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class Sms:
    to: str  # E.164, as the contact stores it
    body: str  # already cut to what one message may carry
    notification_id: str
    user_id: str
    # Stable across attempts: an idempotency key for HTTP SMS services.
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event POSTed to a producer's registered URL (Standard Webhooks)."""

    id: str  # `webhook-id`: stable across attempts
    type: str  # delivery.sent, delivery.dead, notification.delivered, notification.read
    timestamp: int  # unix seconds of the event
    data: Mapping[str, Any]
    url: str
    secret: str  # "whsec_..." as handed to the admin at registration
