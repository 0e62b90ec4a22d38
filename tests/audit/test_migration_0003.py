"""Migration 0003 on a trail written before it: `quickdapp migrate` rolls the old rows up once.

On PostgreSQL (a throwaway database of its own, since it starts at 0002) and on SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from quickdapp.config import Settings
from quickdapp.db.engine import create_engine, session_factory
from quickdapp.db.migrate import alembic_config, upgrade
from quickdapp.db.schema import WorkerJob
from tests.audit.attempts import expected_rollups, random_attempts, stored_rollups, stored_rows
from tests.helpers.processes import run_quickdapp
from tests.helpers.services import throwaway_database

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
def fresh_url(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
        return
    server = make_url(settings.database_url).set(drivername="postgresql", database="postgres")
    with throwaway_database(server.render_as_string(hide_password=False)) as url:
        yield url


async def _write_rows_as_0002_did(url: str) -> None:
    engine = create_engine(url)
    try:
        async with session_factory(engine).begin() as session:
            made = random_attempts(120, T0, timedelta(hours=5), seed=21)
            await session.execute(
                insert(WorkerJob),
                [
                    {
                        "job_id": e.job_id,
                        "attempt": 1,
                        "type": e.type,
                        "user_id": e.user_id,
                        "data": {},
                        "status": e.status,
                        "started_at": e.started_at,
                        "completed_at": e.completed_at,
                        "duration_ms": e.duration_ms,
                        "created_at": e.completed_at,
                    }
                    for e in made
                ],
            )
    finally:
        await engine.dispose()


async def _rollups_match(url: str) -> bool:
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        rows = await stored_rows(sessions)
        return len(rows) == 120 and await stored_rollups(sessions) == expected_rollups(rows)
    finally:
        await engine.dispose()


def test_migrate_adds_the_rollups_of_existing_rows_and_downgrades(
    fresh_url: str, settings: Settings, tmp_path: Path
) -> None:
    upgrade(fresh_url, "0002")
    asyncio.run(_write_rows_as_0002_did(fresh_url))

    migrated = settings.model_copy(
        update={"database_url": fresh_url, "metrics_dir": str(tmp_path / "metrics")}
    )
    result = run_quickdapp(migrated, "migrate", timeout=120)

    assert result.returncode == 0, result.stderr
    assert "rolled up 120 existing audit row(s)" in result.stdout
    assert asyncio.run(_rollups_match(fresh_url))
    # Down to 0002 (its indexes back, the rollups gone) and up again.
    command.downgrade(alembic_config(fresh_url), "0002")
    upgrade(fresh_url)
