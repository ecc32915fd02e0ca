"""Table definitions (SQLAlchemy Core), the single source the migrations are written from.
The column types they share are `columns.py`'s (named here too, as they always were)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from tidings.store.columns import OUTSIDE_TEXT_LIMIT as OUTSIDE_TEXT_LIMIT
from tidings.store.columns import JSONData as JSONData
from tidings.store.columns import NotificationId as NotificationId
from tidings.store.columns import OutsideJSON as OutsideJSON
from tidings.store.columns import OutsideText as OutsideText
from tidings.store.columns import UTCDateTime as UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", NotificationId, primary_key=True),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("channel", sa.String(100), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("scheduled_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # When the user may see it: created_at, or scheduled_at for a future schedule. Lists,
    # counts and missed-notification replay go by this instant, so a scheduled notification
    # shows up (and counts as missed) from the moment it is due, not from its creation.
    sa.Column("visible_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("read_at", UTCDateTime, nullable=True),
    sa.Column("data", JSONData, nullable=True),
    sa.Column("in_app", sa.Boolean, nullable=False),
    sa.Column("producer", sa.String(255), nullable=False),
    # The names of the parts sealed at rest (see store/sealing.py); SQL NULL (not JSON
    # null, hence none_as_null) when none, so rotation finds sealed rows by IS NOT NULL.
    sa.Column("sensitive", sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"), nullable=True),
    # Made from a template: {"key", "version", "locale"} of the variant used; and the
    # rendered email and push parts (subject, text, html, push_title, push_body) that
    # differ from the rules for notifications without one. Null otherwise.
    sa.Column("template", JSONData, nullable=True),
    sa.Column("content", JSONData, nullable=True),
    # Inbox states, expiry and links (DESIGN section 12).
    sa.Column("seen_at", UTCDateTime, nullable=True),
    sa.Column("archived_at", UTCDateTime, nullable=True),
    sa.Column("clicked_at", UTCDateTime, nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("actions", JSONData, nullable=True),
    # The create's Idempotency-Key (with `producer`): cancel by key finds the copies.
    sa.Column("idempotency_key", sa.String(255), nullable=True),
    # Media skipped at creation for want of a provider ("email,push"): no row for them.
    sa.Column("unserved", sa.String(64), nullable=True),
    sa.Index("ix_notifications_user_visible", "user_id", "visible_at", "id"),
    sa.Index("ix_notifications_producer_key", "producer", "idempotency_key",
             postgresql_where=sa.text("idempotency_key IS NOT NULL"),
             sqlite_where=sa.text("idempotency_key IS NOT NULL")),
    sa.Index("ix_notifications_user_status", "user_id", "status"),
    # On PostgreSQL the three notification tables are range-partitioned by notification
    # id, a partition a month (tidings/store/partitions.py, docs/DATABASE.md).
    postgresql_partition_by="RANGE (id)",
)

# A partitioned table's primary key must hold its partition key, hence (id, notification_id)
# on PostgreSQL; `id` stays unique by its sequence, and SQLite keeps `id` alone as its rowid
# (the migrations create it so: a composite key would lose SQLite's autoincrement).
notification_deliveries = sa.Table(
    "notification_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column(
        "notification_id",
        NotificationId,
        sa.ForeignKey("notifications.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("medium", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # When the row is next due: its first try, its next retry, or, while `sending`, the
    # end of its lease (so an expired lease is simply due again: one condition to claim).
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("locked_until", UTCDateTime, nullable=True),
    # Fresh on every claim; settling checks it, so a worker whose lease expired cannot
    # overwrite what the next holder did.
    sa.Column("lease_token", sa.String(36), nullable=True),
    sa.Column("last_error", OutsideText(OUTSIDE_TEXT_LIMIT, wide=True), nullable=True),
    sa.Column("provider_message_id", OutsideText(255), nullable=True),
    # Webhook deliveries: which registration, which event, and the event body.
    sa.Column("webhook_id", sa.String(36), nullable=True),
    sa.Column("event", sa.String(64), nullable=True),
    sa.Column("payload", OutsideJSON, nullable=True),
    # Pacing (templates and pacing): held for a digest, or deferred by quiet hours.
    sa.Column("digest_id", sa.String(36), nullable=True),
    sa.Column("deferred_until", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # The W3C traceparent of the create that made the row (tracing on): the worker's
    # send continues that trace, in whatever process and however late.
    sa.Column("trace_parent", sa.String(55), nullable=True),
    # The claim's order among due rows (DESIGN section 12): 0 critical, 1 high, 2 the rest
    # (its notification's priority, copied here so the claim reads one index).
    sa.Column("rank", sa.SmallInteger, nullable=False, server_default="2"),
    # Which escalation step made the row (contract section 12): 0 for the create's own media.
    sa.Column("step", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Index("ix_deliveries_notification", "notification_id"),
    # The in-app scheduler's lookup names the medium: "due in-app deliveries" must not
    # wade through every email and push row waiting for its worker.
    sa.Index("ix_deliveries_due", "medium", "status", "next_attempt_at"),
    # The workers' claim reads only rows that can be due: a partial index stays small
    # however many finished rows the table holds.
    sa.Index(
        "ix_deliveries_queue", "rank", "next_attempt_at",
        postgresql_where=sa.text("status IN ('pending', 'sending') AND medium <> 'in_app'"),
        sqlite_where=sa.text("status IN ('pending', 'sending') AND medium <> 'in_app'"),
    ),
    sa.Index("ix_deliveries_status_updated", "status", "updated_at"),
    sa.Index("ix_deliveries_digest", "digest_id"),
    postgresql_partition_by="RANGE (notification_id)",
)

# Attempts carry their notification's id: they are partitioned by it like the deliveries,
# and their foreign key goes to the notification (a delivery is only ever deleted with its
# notification), so dropping a month drops its attempts and nothing points into it.
delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("notification_id", NotificationId,
              sa.ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("delivery_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
              nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("code", OutsideText(64), nullable=True),
    sa.Column("error", OutsideText(OUTSIDE_TEXT_LIMIT, wide=True), nullable=True),
    sa.Column("provider_id", OutsideText(255), nullable=True),
    sa.Column("device_id", sa.String(36), nullable=True),
    sa.Column("elapsed_ms", sa.Integer, nullable=False, server_default="0"),
    # Which provider answered, where the medium has several (`smtp`, `http`, `twilio`).
    sa.Column("provider", sa.String(16), nullable=True),
    sa.Index("ix_delivery_attempts_delivery", "delivery_id", "id"),
    sa.Index("ix_delivery_attempts_notification", "notification_id"),
    postgresql_partition_by="RANGE (notification_id)",
)

digests = sa.Table(
    "digests",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_id", sa.String(255), nullable=False),
    # The producer's digest key, or the throttle's own (`~throttle`).
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("medium", sa.String(16), nullable=False),
    sa.Column("opens_at", UTCDateTime, nullable=False),
    sa.Column("closes_at", UTCDateTime, nullable=False),
    # open (collecting, then waiting to be sent), sending (under a lease), sent, dead.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # As on deliveries: closes_at at first, then a retry's time or the lease's end.
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_token", sa.String(36), nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_digests_open", "user_id", "key", "medium", "status"),
    sa.Index("ix_digests_due", "status", "next_attempt_at"),
)

# Sends per user, medium and UTC clock hour, for THROTTLE_PER_HOUR.
send_counts = sa.Table(
    "send_counts",
    metadata,
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("medium", sa.String(16), primary_key=True),
    sa.Column("hour", UTCDateTime, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)


# Escalation steps waiting for their time (contract section 12), one row per (notification,
# step). No foreign key: on PostgreSQL a key into the partitioned notifications would hold
# up dropping a month, and a step whose notification is gone simply ends `canceled`.
# `next_attempt_at` is `due_at` until a worker claims the step, then the end of its lease
# (a worker that dies leaves a step that falls due again by itself, as deliveries do).
escalation_steps = sa.Table(
    "escalation_steps",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("notification_id", NotificationId, nullable=False),
    sa.Column("step", sa.SmallInteger, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("unless", sa.String(16), nullable=False),
    sa.Column("media", JSONData, nullable=False),
    # The create's own digest, which the step's email and push join (else the type's).
    sa.Column("digest_key", sa.String(100), nullable=True),
    sa.Column("digest_window", sa.Integer, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_token", sa.String(36), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_escalation_steps_notification", "notification_id"),
    # The claim reads only steps still to run: the partial index stays small.
    sa.Index(
        "ix_escalation_steps_due", "next_attempt_at",
        postgresql_where=sa.text("state IN ('pending', 'running')"),
        sqlite_where=sa.text("state IN ('pending', 'running')"),
    ),
)

# Broadcasts (contract section 13): the notification is stored once (its `user_id` is the
# empty id, `EVERYONE`) and listed here, so a user's list reads the broadcasts by this
# small index rather than among the team feeds' copies, which share the empty id.
# Per-user state lives in `broadcast_states`, written only for a user who changed
# something (acknowledged, read, saw, archived, deleted). No foreign keys: on PostgreSQL a
# key into the partitioned notifications would hold up dropping a month; retention
# deletes these rows by the same id range.
broadcasts = sa.Table(
    "broadcasts",
    metadata,
    sa.Column("notification_id", NotificationId, primary_key=True),
    sa.Column("visible_at", UTCDateTime, nullable=False),
    sa.Index("ix_broadcasts_visible", "visible_at", "notification_id"),
)

broadcast_states = sa.Table(
    "broadcast_states",
    metadata,
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("notification_id", NotificationId, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("read_at", UTCDateTime, nullable=True),
    sa.Column("seen_at", UTCDateTime, nullable=True),
    sa.Column("archived_at", UTCDateTime, nullable=True),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
    sa.Index("ix_broadcast_states_notification", "notification_id"),
)
