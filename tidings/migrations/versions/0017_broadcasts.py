"""broadcasts: a notification stored once for every user, and each user's own state of it

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

# As in the notifications: byte order ("C"), so id order is time order on PostgreSQL.
NOTIFICATION_ID = sa.String(36).with_variant(sa.String(36, collation="C"), "postgresql")
INSTANT = sa.DateTime(timezone=True)


revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("notification_id", NOTIFICATION_ID, nullable=False),
        sa.Column("visible_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("notification_id", name="pk_broadcasts"),
    )
    op.create_index("ix_broadcasts_visible", "broadcasts", ["visible_at", "notification_id"])
    op.create_table(
        "broadcast_states",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("notification_id", NOTIFICATION_ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("delivered_at", INSTANT, nullable=True),
        sa.Column("read_at", INSTANT, nullable=True),
        sa.Column("seen_at", INSTANT, nullable=True),
        sa.Column("archived_at", INSTANT, nullable=True),
        sa.Column("deleted_at", INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("user_id", "notification_id", name="pk_broadcast_states"),
    )
    op.create_index("ix_broadcast_states_notification", "broadcast_states",
                    ["notification_id"])


def downgrade() -> None:
    op.drop_table("broadcast_states")
    op.drop_table("broadcasts")
