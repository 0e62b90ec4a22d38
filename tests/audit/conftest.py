"""The audit trail's queries on both databases it runs on: PostgreSQL and SQLite (development)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.config import Settings
from quickdapp.db.engine import create_engine, session_factory
from quickdapp.db.migrate import upgrade

Sessions = async_sessionmaker[AsyncSession]


@asynccontextmanager
async def _sessions_on(url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def _new_sqlite(folder: Path) -> str:
    url = f"sqlite+aiosqlite:///{folder / 'audit.sqlite3'}"
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop
    return url


@pytest.fixture
async def sqlite_sessions(tmp_path: Path) -> AsyncIterator[Sessions]:
    """Sessions on a new, migrated SQLite file."""
    async with _sessions_on(await _new_sqlite(tmp_path)) as sessions:
        yield sessions


@pytest.fixture(params=["postgresql", "sqlite"])
async def sessions(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> AsyncIterator[Sessions]:
    """Sessions on the test's (emptied) PostgreSQL database, then on a new SQLite file."""
    url = settings.database_url if request.param == "postgresql" else await _new_sqlite(tmp_path)
    async with _sessions_on(url) as sessions:
        yield sessions
