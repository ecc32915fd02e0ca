"""templates, and the template and rendered content of a notification

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("default_locale", sa.String(35), nullable=False),
        sa.Column("variants", JSON, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "version", name=op.f("pk_templates")),
    )
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.add_column(sa.Column("template", JSON, nullable=True))
        batch_op.add_column(sa.Column("content", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.drop_column("content")
        batch_op.drop_column("template")
    op.drop_table("templates")
