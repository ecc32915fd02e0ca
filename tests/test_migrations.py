"""The Alembic migrations build exactly the schema the code declares, and go back down."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from tidings.jobs.migrate import downgrade, upgrade
from tidings.store.partitions import schema_filters
from tidings.store.schema import metadata

pytestmark = pytest.mark.both_databases


async def _differences(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(
                sync, opts={"compare_type": False, **schema_filters()}), metadata))
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    assert await _differences(database_url) == []


async def test_migrations_go_down_and_up_again(database_url: str) -> None:
    await asyncio.to_thread(downgrade, database_url, "base")
    assert await _differences(database_url) != []
    await asyncio.to_thread(upgrade, database_url)
    assert await _differences(database_url) == []
