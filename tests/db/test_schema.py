"""Migrations and models agree, on PostgreSQL and on SQLite (the development default)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from quickdapp.db.engine import create_engine
from quickdapp.db.schema import Base


def _differences(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def _assert_schema_matches_models(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()


async def test_postgres_schema_matches_models(database_url: str) -> None:
    await _assert_schema_matches_models(database_url)


async def test_sqlite_schema_matches_models(sqlite_url: str) -> None:
    await _assert_schema_matches_models(sqlite_url)
