"""escalation: steps waiting for their time, and each delivery's step

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_WAITING = "state IN ('pending', 'running')"


def upgrade() -> None:
    # A constant default: PostgreSQL (11 and later) adds it to every partition without
    # rewriting a row.
    with op.batch_alter_table("notification_deliveries") as batch_op:
        batch_op.add_column(sa.Column("step", sa.SmallInteger(), nullable=False,
                                      server_default="0"))
    op.create_table(
        "escalation_steps",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("notification_id", sa.String(36).with_variant(
            sa.String(36, collation="C"), "postgresql"), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unless", sa.String(16), nullable=False),
        sa.Column("media", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                  nullable=False),
        sa.Column("digest_key", sa.String(100), nullable=True),
        sa.Column("digest_window", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_token", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_steps")),
    )
    op.create_index("ix_escalation_steps_notification", "escalation_steps",
                    ["notification_id"])
    op.create_index("ix_escalation_steps_due", "escalation_steps", ["next_attempt_at"],
                    postgresql_where=sa.text(_WAITING), sqlite_where=sa.text(_WAITING))


def downgrade() -> None:
    op.drop_index("ix_escalation_steps_due", table_name="escalation_steps")
    op.drop_index("ix_escalation_steps_notification", table_name="escalation_steps")
    op.drop_table("escalation_steps")
    with op.batch_alter_table("notification_deliveries") as batch_op:
        batch_op.drop_column("step")
