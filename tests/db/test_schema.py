"""Migrations and models agree, on PostgreSQL and on SQLite (the development default)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from quickdapp.attempts import JobExecution
from quickdapp.audit.job_metrics import get_job_metrics
from quickdapp.audit.store import record_job_execution
from quickdapp.db.engine import create_engine, session_factory
from quickdapp.db.migrate import upgrade
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


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dev' / 'quickdapp.sqlite3'}"
    upgrade(url)  # also creates the folder, as `quickdapp dev` does on a fresh checkout
    return url


async def test_sqlite_schema_matches_models(sqlite_url: str) -> None:
    await _assert_schema_matches_models(sqlite_url)


async def test_sqlite_metrics_compute_the_same_figures(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        for i in range(10):
            await record_job_execution(
                sessions,
                JobExecution(
                    job_id=f"e{i}",
                    attempt=1,
                    type="echo",
                    user_id=None,
                    data={},
                    status="failed" if i in (0, 9) else "completed",
                    started_at=t0,
                    completed_at=t0 + timedelta(milliseconds=(i + 1) * 10),
                ),
            )
        [echo] = await get_job_metrics(sessions, since=t0 - timedelta(seconds=1))
    finally:
        await engine.dispose()
    assert (echo.count, echo.completed, echo.failed) == (10, 8, 2)
    assert (echo.average_ms, echo.p50_ms) == (55.0, 55.0)
    assert echo.p95_ms == pytest.approx(95.5)
