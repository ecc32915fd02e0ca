"""The database part of the settings: which database (DATABASE_URL, or PostgreSQL built
from DB_*), its pool, and how long notifications are kept. A group of fields that
`Settings` inherits (as `redis.py`)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from tidings.config.values import normalize_database_url

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./tidings.db"


class DatabaseSettings(BaseSettings):
    """DATABASE_URL, DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD, DB_POOL_SIZE and
    RETENTION_DAYS."""

    database_url: str = Field("", validation_alias="DATABASE_URL")
    db_host: str = Field("", validation_alias="DB_HOST")
    db_port: int = Field(5432, validation_alias="DB_PORT")
    db_name: str = Field("tidings", validation_alias="DB_NAME")
    db_user: str = Field("postgres", validation_alias="DB_USER")
    db_password: str = Field("", validation_alias="DB_PASSWORD")
    db_pool_size: int = Field(10, ge=1, validation_alias="DB_POOL_SIZE")
    # Notifications older than this many days are dropped (whole monthly partitions on
    # PostgreSQL); 0 keeps them forever.
    retention_days: int = Field(0, ge=0, validation_alias="RETENTION_DAYS")

    @model_validator(mode="after")
    def _build_database_url(self) -> DatabaseSettings:
        if not self.database_url:
            if self.db_host:
                auth = self.db_user + (f":{self.db_password}" if self.db_password else "")
                self.database_url = (
                    f"postgresql+asyncpg://{auth}@{self.db_host}:{self.db_port}/{self.db_name}"
                )
            else:
                self.database_url = DEFAULT_SQLITE_URL
        self.database_url = normalize_database_url(self.database_url)
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
