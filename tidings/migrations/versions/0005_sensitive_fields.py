"""notifications record which of their parts are sealed at rest

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.add_column(sa.Column(
            "sensitive", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True))


def downgrade() -> None:
    # Without the column, sealed values would be served as if they were the plaintext.
    sealed = op.get_bind().execute(
        sa.text("SELECT count(*) FROM notifications WHERE sensitive IS NOT NULL")).scalar()
    if sealed:
        raise RuntimeError(
            f"{sealed} notification(s) hold values sealed at rest; delete them before "
            "downgrading below 0005")
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.drop_column("sensitive")
