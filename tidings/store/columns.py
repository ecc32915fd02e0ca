"""The column types the tables share: timestamps that are UTC on every database, JSON
(JSONB on PostgreSQL), text and JSON from outside made storable on their way in, and the
notification id's collation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from tidings.domain.text import storable, storable_json


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timestamps are stored as UTC and always come back timezone-aware.

    SQLite has no time type: values are stored as text, `YYYY-MM-DD HH:MM:SS.ffffff` in UTC
    (the layout SQLAlchemy uses too), so text order is time order. Formatting and parsing
    them with `isoformat`/`fromisoformat` here is several times cheaper than SQLAlchemy's
    generic SQLite conversion, which matters when a channel fan-out writes 10,000 rows.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(26))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


JSONData = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# How long a text column without a length of its own keeps what a provider said.
OUTSIDE_TEXT_LIMIT = 1000


class OutsideText(sa.TypeDecorator[str]):
    """A column that holds text from outside the service (a provider's answer, message
    id or header, an error text): whatever statement writes it, the value is made
    storable (`domain.text.storable`: NUL and lone surrogates replaced) and cut to
    `length` on its way in, so no path can forget to, and no provider can make the
    database refuse a row. `wide` columns are TEXT, bounded here rather than by the
    database."""

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int, *, wide: bool = False) -> None:
        super().__init__(None if wide else length)
        self.length = length
        self.wide = wide

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        return dialect.type_descriptor(sa.Text() if self.wide else sa.String(self.length))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else storable(value, self.length)


class OutsideJSON(sa.TypeDecorator[Any]):
    """`JSONData` for documents that carry text from outside (webhook event bodies quote
    providers' ids and errors): every key and string made storable, as `OutsideText`.
    PostgreSQL's JSONB refuses `\\u0000` and lone surrogate escapes."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB())
        return dialect.type_descriptor(sa.JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return storable_json(value, OUTSIDE_TEXT_LIMIT)


# A notification id (UUIDv7 text). On PostgreSQL it compares bytewise ("C"): the monthly
# partition bounds are id prefixes, which only follow time order under that collation.
# SQLite compares text bytewise already (and knows no collation named "C").
NotificationId = sa.String(36).with_variant(sa.String(36, collation="C"), "postgresql")
