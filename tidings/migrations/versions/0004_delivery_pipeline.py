"""delivery pipeline: leases, attempts, contacts, push devices, webhooks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DUE = "status IN ('pending', 'sending') AND medium <> 'in_app'"
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("notification_deliveries") as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.String(36), nullable=True))
        batch_op.add_column(sa.Column("webhook_id", sa.String(36), nullable=True))
        batch_op.add_column(sa.Column("event", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("payload", JSON, nullable=True))
        batch_op.add_column(sa.Column("digest_id", sa.String(36), nullable=True))
        batch_op.add_column(sa.Column("deferred_until", sa.DateTime(timezone=True),
                                      nullable=True))
        # Webhook events add rows of their own per notification: the pair is no longer
        # unique, but it stays the lookup of a notification's deliveries.
        batch_op.drop_constraint("uq_notification_deliveries_notification_id_medium",
                                 type_="unique")
        batch_op.create_index("ix_deliveries_notification", ["notification_id"])
        batch_op.create_index("ix_deliveries_status_updated", ["status", "updated_at"])
        batch_op.create_index("ix_deliveries_queue", ["next_attempt_at"],
                              postgresql_where=sa.text(DUE), sqlite_where=sa.text(DUE))
    if op.get_bind().dialect.name == "postgresql":
        # A queue table churns: vacuum it long before the default 20% of dead rows, since
        # dead tuples are what slows the claim first.
        op.execute(
            "ALTER TABLE notification_deliveries SET (autovacuum_vacuum_scale_factor = 0.01,"
            " autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 1)"
        )

    op.create_table(
        "delivery_attempts",
        sa.Column("id", ID, nullable=False, autoincrement=True),
        sa.Column("delivery_id", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("provider_id", sa.String(255), nullable=True),
        sa.Column("device_id", sa.String(36), nullable=True),
        sa.Column("elapsed_ms", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["notification_deliveries.id"],
            name=op.f("fk_delivery_attempts_delivery_id_notification_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    op.create_index("ix_delivery_attempts_delivery", "delivery_attempts", ["delivery_id", "id"])
    op.create_table(
        "contacts",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("locale", sa.String(35), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("quiet_start", sa.String(5), nullable=True),
        sa.Column("quiet_end", sa.String(5), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_contacts")),
    )
    op.create_table(
        "push_devices",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("p256dh", sa.String(255), nullable=True),
        sa.Column("auth", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_devices")),
        sa.UniqueConstraint("platform", "address",
                            name=op.f("uq_push_devices_platform_address")),
    )
    op.create_index("ix_push_devices_user", "push_devices", ["user_id"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", JSON, nullable=False),
        sa.Column("secret", sa.String(255), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )


def downgrade() -> None:
    op.drop_table("webhooks")
    op.drop_index("ix_push_devices_user", table_name="push_devices")
    op.drop_table("push_devices")
    op.drop_table("contacts")
    op.drop_index("ix_delivery_attempts_delivery", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE notification_deliveries RESET (autovacuum_vacuum_scale_factor,"
            " autovacuum_analyze_scale_factor, autovacuum_vacuum_cost_delay)"
        )
    # Rows added for webhooks would break the restored unique pair: they go first.
    op.execute("DELETE FROM notification_deliveries WHERE webhook_id IS NOT NULL")
    with op.batch_alter_table("notification_deliveries") as batch_op:
        batch_op.drop_index("ix_deliveries_queue")
        batch_op.drop_index("ix_deliveries_status_updated")
        batch_op.drop_index("ix_deliveries_notification")
        batch_op.create_unique_constraint(
            "uq_notification_deliveries_notification_id_medium", ["notification_id", "medium"]
        )
        for column in ("deferred_until", "digest_id", "payload", "event", "webhook_id",
                       "lease_token"):
            batch_op.drop_column(column)
