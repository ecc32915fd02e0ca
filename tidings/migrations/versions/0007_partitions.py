"""monthly partitions of notifications, deliveries and attempts (PostgreSQL)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

On PostgreSQL each existing table becomes the first partition of its new partitioned
table, in place (no copy): a CHECK constraint added NOT VALID and then validated proves the
rows fit the partition's range, so ATTACH PARTITION has nothing left to scan. The range of
that first partition ends at the first month boundary after its newest row (or the current
month's start on an empty database); monthly partitions follow, plus a default partition.

What does cost a pass over existing rows: the id columns move to the "C" collation (their
indexes are rebuilt), the deliveries' and attempts' primary keys gain notification_id (a
new index each), attempts get their notification id filled in, and the new foreign keys
are checked. SQLite has no partitions: there only the attempts change (notification_id,
its foreign key and index).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from tidings.store.partitions import (
    QUEUE_STORAGE,
    create_month_sql,
    id_prefix,
    month_start,
    next_month,
    prefix_time,
)

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

AHEAD = 3
# Renamed with the table to `<name>_legacy` when it becomes the first partition (the
# parent's indexes take the canonical names).
INDEXES = {
    "notifications": ["ix_notifications_user_visible", "ix_notifications_user_status"],
    "notification_deliveries": ["ix_deliveries_notification", "ix_deliveries_due",
                                "ix_deliveries_queue", "ix_deliveries_status_updated",
                                "ix_deliveries_digest"],
    "delivery_attempts": ["ix_delivery_attempts_delivery",
                          "ix_delivery_attempts_notification"],
}
PARENT_DDL = {
    "notifications": [
        "ALTER TABLE notifications ADD CONSTRAINT pk_notifications PRIMARY KEY (id)",
        "CREATE INDEX ix_notifications_user_visible ON notifications (user_id, visible_at, id)",
        "CREATE INDEX ix_notifications_user_status ON notifications (user_id, status)",
    ],
    "notification_deliveries": [
        "ALTER TABLE notification_deliveries ADD CONSTRAINT pk_notification_deliveries"
        " PRIMARY KEY (id, notification_id)",
        "CREATE INDEX ix_deliveries_notification ON notification_deliveries (notification_id)",
        "CREATE INDEX ix_deliveries_due ON notification_deliveries"
        " (medium, status, next_attempt_at)",
        "CREATE INDEX ix_deliveries_queue ON notification_deliveries (next_attempt_at)"
        " WHERE status IN ('pending', 'sending') AND medium <> 'in_app'",
        "CREATE INDEX ix_deliveries_status_updated ON notification_deliveries"
        " (status, updated_at)",
        "CREATE INDEX ix_deliveries_digest ON notification_deliveries (digest_id)",
    ],
    "delivery_attempts": [
        "ALTER TABLE delivery_attempts ADD CONSTRAINT pk_delivery_attempts"
        " PRIMARY KEY (id, notification_id)",
        "CREATE INDEX ix_delivery_attempts_delivery ON delivery_attempts (delivery_id, id)",
        "CREATE INDEX ix_delivery_attempts_notification ON delivery_attempts"
        " (notification_id)",
    ],
}
KEY = {"notifications": "id", "notification_deliveries": "notification_id",
       "delivery_attempts": "notification_id"}
FKS = [
    ("notification_deliveries", "fk_notification_deliveries_notification_id_notifications"),
    ("delivery_attempts", "fk_delivery_attempts_notification_id_notifications"),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        _sqlite_upgrade()
        return
    now = datetime.now(UTC)
    newest = op.get_bind().execute(
        sa.text('SELECT max(id COLLATE "C") FROM notifications')).scalar()
    made = prefix_time(newest) if newest else None
    upper = month_start(now)
    if made is not None and next_month(month_start(made)) > upper:
        upper = next_month(month_start(made))
    bound = id_prefix(upper)

    op.execute("ALTER TABLE delivery_attempts"
               " DROP CONSTRAINT fk_delivery_attempts_delivery_id_notification_deliveries")
    op.execute("ALTER TABLE notification_deliveries"
               " DROP CONSTRAINT fk_notification_deliveries_notification_id_notifications")
    op.execute('ALTER TABLE notifications ALTER COLUMN id TYPE varchar(36) COLLATE "C"')
    op.execute("ALTER TABLE notification_deliveries"
               ' ALTER COLUMN notification_id TYPE varchar(36) COLLATE "C"')
    op.execute('ALTER TABLE delivery_attempts ADD COLUMN notification_id varchar(36) COLLATE "C"')
    op.execute("UPDATE delivery_attempts a SET notification_id = d.notification_id"
               " FROM notification_deliveries d WHERE d.id = a.delivery_id")
    op.execute("DELETE FROM delivery_attempts WHERE notification_id IS NULL")
    op.execute("ALTER TABLE delivery_attempts ALTER COLUMN notification_id SET NOT NULL")
    op.execute("CREATE INDEX ix_delivery_attempts_notification"
               " ON delivery_attempts (notification_id)")
    # A partitioned table's unique keys hold its partition key.
    for table in ("notification_deliveries", "delivery_attempts"):
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table}_legacy"
                   f" PRIMARY KEY (id, notification_id)")
    op.execute("ALTER TABLE notifications RENAME CONSTRAINT pk_notifications"
               " TO pk_notifications_legacy")

    for table, indexes in INDEXES.items():
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_legacy")
        for index in indexes:
            op.execute(f"ALTER INDEX {index} RENAME TO {index}_legacy")
        op.execute(f"CREATE TABLE {table} (LIKE {table}_legacy INCLUDING DEFAULTS)"
                   f" PARTITION BY RANGE ({KEY[table]})")
        for ddl in PARENT_DDL[table]:
            op.execute(ddl)
        if table != "notifications":
            # The id sequence belongs to the parent now (it outlives any partition).
            op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
        # The validated CHECK implies the partition constraint: ATTACH skips its scan.
        check = f"{table}_legacy_bound"
        op.execute(f"ALTER TABLE {table}_legacy ADD CONSTRAINT {check}"
                   f" CHECK ({KEY[table]} < '{bound}') NOT VALID")
        op.execute(f"ALTER TABLE {table}_legacy VALIDATE CONSTRAINT {check}")
        op.execute(f"ALTER TABLE {table} ATTACH PARTITION {table}_legacy"
                   f" FOR VALUES FROM (MINVALUE) TO ('{bound}')")
        op.execute(f"ALTER TABLE {table}_legacy DROP CONSTRAINT {check}")
        storage = f" WITH ({QUEUE_STORAGE})" if table == "notification_deliveries" else ""
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT{storage}")
        start = upper
        while start <= _months_after(month_start(now), AHEAD):
            op.execute(create_month_sql(table, start))
            start = next_month(start)

    for table, name in FKS:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY"
                   f" (notification_id) REFERENCES notifications (id) ON DELETE CASCADE")


def _months_after(start: datetime, count: int) -> datetime:
    for _ in range(count):
        start = next_month(start)
    return start


def _sqlite_upgrade() -> None:
    with op.batch_alter_table("delivery_attempts") as batch_op:
        batch_op.add_column(sa.Column("notification_id", sa.String(36), nullable=True))
    op.execute("UPDATE delivery_attempts SET notification_id = (SELECT d.notification_id"
               " FROM notification_deliveries d WHERE d.id = delivery_attempts.delivery_id)")
    op.execute("DELETE FROM delivery_attempts WHERE notification_id IS NULL")
    with op.batch_alter_table("delivery_attempts") as batch_op:
        batch_op.alter_column("notification_id", existing_type=sa.String(36), nullable=False)
        batch_op.drop_constraint("fk_delivery_attempts_delivery_id_notification_deliveries",
                                 type_="foreignkey")
        batch_op.create_foreign_key("fk_delivery_attempts_notification_id_notifications",
                                    "notifications", ["notification_id"], ["id"],
                                    ondelete="CASCADE")
        batch_op.create_index("ix_delivery_attempts_notification", ["notification_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("delivery_attempts") as batch_op:
            batch_op.drop_index("ix_delivery_attempts_notification")
            batch_op.drop_constraint("fk_delivery_attempts_notification_id_notifications",
                                     type_="foreignkey")
            batch_op.create_foreign_key(
                "fk_delivery_attempts_delivery_id_notification_deliveries",
                "notification_deliveries", ["delivery_id"], ["id"], ondelete="CASCADE")
            batch_op.drop_column("notification_id")
        return
    for table, name in FKS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    # Back to plain tables: the first partition is detached in place and takes back the
    # rows of the later ones (this direction copies what was written since the upgrade).
    for table, indexes in INDEXES.items():
        op.execute(f"ALTER TABLE {table} DETACH PARTITION {table}_legacy")
        op.execute(f"INSERT INTO {table}_legacy SELECT * FROM {table}")
        if table != "notifications":
            op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}_legacy.id")
        op.execute(f"DROP TABLE {table}")
        op.execute(f"ALTER TABLE {table}_legacy RENAME TO {table}")
        for index in indexes:
            op.execute(f"ALTER INDEX {index}_legacy RENAME TO {index}")
    op.execute("ALTER TABLE notifications RENAME CONSTRAINT pk_notifications_legacy"
               " TO pk_notifications")
    for table in ("notification_deliveries", "delivery_attempts"):
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}_legacy")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id)")
    op.execute("DROP INDEX ix_delivery_attempts_notification")
    op.execute("ALTER TABLE delivery_attempts DROP COLUMN notification_id")
    op.execute('ALTER TABLE notifications ALTER COLUMN id TYPE varchar(36) COLLATE "default"')
    op.execute("ALTER TABLE notification_deliveries"
               ' ALTER COLUMN notification_id TYPE varchar(36) COLLATE "default"')
    op.execute("ALTER TABLE notification_deliveries ADD CONSTRAINT"
               " fk_notification_deliveries_notification_id_notifications FOREIGN KEY"
               " (notification_id) REFERENCES notifications (id) ON DELETE CASCADE")
    op.execute("ALTER TABLE delivery_attempts ADD CONSTRAINT"
               " fk_delivery_attempts_delivery_id_notification_deliveries FOREIGN KEY"
               " (delivery_id) REFERENCES notification_deliveries (id) ON DELETE CASCADE")
