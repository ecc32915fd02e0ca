"""A PostgreSQL database of a run's own: created, migrated with `tidings migrate`, dropped
after (with FORCE, so a server killed mid-run does not leave it behind)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def with_database(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + name


def async_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def migrate(url: str) -> None:
    tidings = str(Path(sys.executable).with_name("tidings"))
    process = await asyncio.create_subprocess_exec(
        tidings, "migrate", env=dict(os.environ, DATABASE_URL=url),
        stdout=subprocess.DEVNULL,
    )
    if await process.wait() != 0:
        raise RuntimeError("tidings migrate failed")


@asynccontextmanager
async def scratch_postgres(admin_url: str = ADMIN_URL, tag: str = "run") -> AsyncIterator[str]:
    """The URL (``postgresql://``) of a fresh, migrated database, dropped on exit."""
    name = f"tidings_bench_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_async_engine(async_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = with_database(admin_url, name)
        try:
            await migrate(url)
            yield url
        finally:
            async with admin.connect() as conn:
                await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
