"""preferences gain sms_enabled and chat_enabled; contacts gain phone; attempts name their
provider

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows say nothing of the new media: enabled, as a row that names no flag.
    with op.batch_alter_table("user_notification_preferences") as batch_op:
        batch_op.add_column(sa.Column("sms_enabled", sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.add_column(sa.Column("chat_enabled", sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.add_column(sa.Column("phone", sa.String(16), nullable=True))
    # A plain ADD COLUMN without a default: on PostgreSQL the partitioned parent passes it
    # to every partition, and no row is rewritten.
    op.add_column("delivery_attempts", sa.Column("provider", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_attempts") as batch_op:
        batch_op.drop_column("provider")
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.drop_column("phone")
    with op.batch_alter_table("user_notification_preferences") as batch_op:
        batch_op.drop_column("chat_enabled")
        batch_op.drop_column("sms_enabled")
