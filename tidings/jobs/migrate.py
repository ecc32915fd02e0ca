"""Schema migrations through Alembic, driven from code (no alembic.ini to ship)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent.parent / "migrations"


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


@dataclass(frozen=True)
class Migrated:
    """What `migrate` did: the revision before (None: an empty database) and after, and
    how many migrations ran in between (0: it was up to date)."""

    before: str | None
    after: str | None
    applied: int


def head(database_url: str) -> str | None:
    """The newest revision this code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def upgrade_to_head(database_url: str) -> Migrated:
    """`upgrade` to the newest revision, saying what it did. Synchronous, like `upgrade`."""
    import asyncio

    from alembic.script import ScriptDirectory

    before = asyncio.run(current_revision(database_url))
    upgrade(database_url)
    after = asyncio.run(current_revision(database_url))
    script = ScriptDirectory.from_config(alembic_config(database_url))
    applied, revision = 0, after
    while revision is not None and revision != before:  # the history is one line
        applied += 1
        down = script.get_revision(revision).down_revision
        revision = down if isinstance(down, str) or down is None else down[0]
    return Migrated(before, after, applied)


async def current_revision(database_url: str) -> str | None:
    """The database's schema revision; None when it has none (empty, or unreachable)."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            version = (
                await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
    except sa.exc.DBAPIError:
        return None
    finally:
        await engine.dispose()
    return None if version is None else str(version)


async def is_current(database_url: str) -> bool:
    """Whether the database's schema is at the newest revision this code knows."""
    version = await current_revision(database_url)
    return version is not None and version == head(database_url)
