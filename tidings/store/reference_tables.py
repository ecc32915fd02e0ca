"""The tables of what the delivery pipeline reads but does not move: users' contacts,
devices, preferences and subscriptions; producers' idempotency keys; operators' webhooks,
team feeds, templates and types. On `tables.py`'s metadata (`schema.py` gathers both)."""

from __future__ import annotations

import sqlalchemy as sa

from tidings.store.columns import JSONData, OutsideText, UTCDateTime
from tidings.store.tables import metadata

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("phone", sa.String(16), nullable=True),
    sa.Column("slack_user_id", sa.String(32), nullable=True),  # E.164: "+" and at most 15 digits
    sa.Column("locale", sa.String(35), nullable=True),
    sa.Column("timezone", sa.String(64), nullable=True),
    sa.Column("quiet_start", sa.String(5), nullable=True),  # "HH:MM" in `timezone`
    sa.Column("quiet_end", sa.String(5), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


push_devices = sa.Table(
    "push_devices",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    # The FCM or APNs token, or the Web Push endpoint: what identifies the device to its
    # provider (registering it again moves it to the new user).
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("p256dh", sa.String(255), nullable=True),
    sa.Column("auth", sa.String(255), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("disabled_at", UTCDateTime, nullable=True),
    sa.Column("disabled_reason", OutsideText(255), nullable=True),
    sa.UniqueConstraint("platform", "address"),
    sa.Index("ix_push_devices_user", "user_id"),
)


webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("events", JSONData, nullable=False),
    sa.Column("secret", sa.String(255), nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


# A channel's team feed: every notification of the channel is posted once to this
# incoming webhook (the URL is the credential the chat service handed out).
channel_feeds = sa.Table(
    "channel_feeds",
    metadata,
    sa.Column("channel", sa.String(100), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("webhook_url", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


preferences = sa.Table(
    "user_notification_preferences",
    metadata,
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("channel", sa.String(100), primary_key=True),
    sa.Column("notification_type", sa.String(100), primary_key=True),
    sa.Column("email_enabled", sa.Boolean, nullable=False),
    sa.Column("push_enabled", sa.Boolean, nullable=False),
    sa.Column("in_app_enabled", sa.Boolean, nullable=False),
    sa.Column("sms_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("chat_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("channel", sa.String(100), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_subscriptions_channel", "channel", "user_id"),
)


idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("producer", sa.String(255), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", JSONData, nullable=False),
    # A digest of the request the key first answered: the same key with another body is
    # refused rather than answered with a result that does not belong to it. Null on keys
    # written before it existed.
    sa.Column("fingerprint", sa.String(64), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


# Every version of every template; the latest version of a key is the one creates use.
# DELETE removes all the versions of a key, so a new POST starts at version 1 again.
templates = sa.Table(
    "templates",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("default_locale", sa.String(35), nullable=False),
    sa.Column("variants", JSONData, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


# The catalogue of notification types (contract section 11): what an admin says of a
# (channel, type). Small (written by hand), read whole into each process's cache.
types = sa.Table(
    "types",
    metadata,
    sa.Column("channel", sa.String(100), primary_key=True),
    sa.Column("type", sa.String(100), primary_key=True),
    sa.Column("name", JSONData, nullable=False),  # {locale: text}
    sa.Column("description", JSONData, nullable=True),  # {locale: text}
    sa.Column("required", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("default_media", JSONData, nullable=True),  # [medium]
    sa.Column("escalation", JSONData, nullable=True),  # [{after_seconds, unless, media}]
    sa.Column("digest", JSONData, nullable=True),  # {key, window_seconds}
    sa.Column("updated_by", sa.String(255), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
