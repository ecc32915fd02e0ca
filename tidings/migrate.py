"""Schema migrations through Alembic, driven from code (no alembic.ini to ship)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema to `revision`. Synchronous: Alembic runs its own event loop, so
    call it before the service's loop starts, or through `asyncio.to_thread`."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


async def is_current(database_url: str) -> bool:
    """Whether the database's schema is at the newest revision this code knows."""
    import sqlalchemy as sa
    from alembic.script import ScriptDirectory
    from sqlalchemy.ext.asyncio import create_async_engine

    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            version = (
                await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
    except sa.exc.DBAPIError:
        return False
    finally:
        await engine.dispose()
    return bool(version == head)
