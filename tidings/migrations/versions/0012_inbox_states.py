"""inbox states, expiry, links, cancel by key, and the queue's priority order

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Notifications gain seen_at, archived_at, clicked_at, expires_at, url, actions and the
create's idempotency key (indexed with the producer, for cancel by key). Deliveries gain
`rank` (0 critical, 1 high, 2 the rest; existing rows take their notification's), and the
claim's partial index leads with it so the claim reads due rows in priority order. On
PostgreSQL an index made on the partitioned parent is made on every partition.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = sa.DateTime(timezone=True)
QUEUED = "status IN ('pending', 'sending') AND medium <> 'in_app'"


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch_op:
        for name in ("seen_at", "archived_at", "clicked_at", "expires_at"):
            batch_op.add_column(sa.Column(name, TIME, nullable=True))
        batch_op.add_column(sa.Column("url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("actions", JSON, nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sa.String(255), nullable=True))
    op.create_index("ix_notifications_producer_key", "notifications",
                    ["producer", "idempotency_key"],
                    postgresql_where=sa.text("idempotency_key IS NOT NULL"),
                    sqlite_where=sa.text("idempotency_key IS NOT NULL"))
    with op.batch_alter_table("notification_deliveries") as batch_op:
        batch_op.add_column(sa.Column("rank", sa.SmallInteger(), nullable=False,
                                      server_default="2"))
    # Waiting rows take their notification's priority; finished ones keep the default.
    op.execute(
        "UPDATE notification_deliveries SET rank = CASE (SELECT priority FROM notifications"
        " WHERE notifications.id = notification_deliveries.notification_id)"
        " WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END"
        f" WHERE {QUEUED}")
    op.drop_index("ix_deliveries_queue", table_name="notification_deliveries")
    op.create_index("ix_deliveries_queue", "notification_deliveries",
                    ["rank", "next_attempt_at"],
                    postgresql_where=sa.text(QUEUED), sqlite_where=sa.text(QUEUED))


    _keep_legacy_name()


def _keep_legacy_name() -> None:
    """On PostgreSQL, the first partition's copy of the new index takes the name 0007
    gave it (`ix_deliveries_queue_legacy`), which 0007's downgrade renames back."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        DO $$
        DECLARE child text;
        BEGIN
          SELECT c.relname INTO child FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent
            JOIN pg_index x ON x.indexrelid = c.oid
            JOIN pg_class t ON t.oid = x.indrelid
           WHERE p.relname = 'ix_deliveries_queue'
             AND t.relname = 'notification_deliveries_legacy';
          IF child IS NOT NULL AND child <> 'ix_deliveries_queue_legacy' THEN
            EXECUTE format('ALTER INDEX %I RENAME TO ix_deliveries_queue_legacy', child);
          END IF;
        END $$""")


def downgrade() -> None:
    op.drop_index("ix_deliveries_queue", table_name="notification_deliveries")
    op.create_index("ix_deliveries_queue", "notification_deliveries", ["next_attempt_at"],
                    postgresql_where=sa.text(QUEUED), sqlite_where=sa.text(QUEUED))
    _keep_legacy_name()
    with op.batch_alter_table("notification_deliveries") as batch_op:
        batch_op.drop_column("rank")
    op.drop_index("ix_notifications_producer_key", table_name="notifications")
    with op.batch_alter_table("notifications") as batch_op:
        for name in ("idempotency_key", "actions", "url", "expires_at", "clicked_at",
                     "archived_at", "seen_at"):
            batch_op.drop_column(name)
