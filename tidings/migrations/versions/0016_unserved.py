"""notifications keep the media skipped at creation for want of a provider, instead of a
delivery row each

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: PostgreSQL adds it to every partition without a rewrite. Rows
    # written before keep their `skipped` delivery rows, which show as they always did.
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.add_column(sa.Column("unserved", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.drop_column("unserved")
