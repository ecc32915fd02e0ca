"""pacing: digest windows and hourly send counts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("medium", sa.String(16), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_token", sa.String(36), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digests")),
    )
    op.create_index("ix_digests_open", "digests", ["user_id", "key", "medium", "status"])
    op.create_index("ix_digests_due", "digests", ["status", "next_attempt_at"])
    op.create_table(
        "send_counts",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("medium", sa.String(16), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "medium", "hour", name=op.f("pk_send_counts")),
    )
    # Held deliveries are looked up by their digest when it is sent.
    op.create_index("ix_deliveries_digest", "notification_deliveries", ["digest_id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_digest", table_name="notification_deliveries")
    op.drop_table("send_counts")
    op.drop_index("ix_digests_due", table_name="digests")
    op.drop_index("ix_digests_open", table_name="digests")
    op.drop_table("digests")
