"""The audit series (attempts per time bucket) on both databases the system runs on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.app.server_app import ServerApp
from quickdapp.attempts import JobExecution, Status
from quickdapp.audit.series import get_job_series
from quickdapp.audit.store import record_job_execution
from quickdapp.db.engine import create_engine, session_factory
from quickdapp.db.migrate import upgrade

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# (seconds after START, status, type)
ROWS: list[tuple[int, Status, str]] = [
    (5, "completed", "a"),
    (59, "failed", "a"),
    (60, "completed", "a"),
    (61, "completed", "b"),
    (179, "failed", "b"),
]


async def _check(sessions: async_sessionmaker[AsyncSession]) -> None:
    for index, (offset, status, job_type) in enumerate(ROWS):
        at = START + timedelta(seconds=offset)
        execution = JobExecution(
            f"job-{index}", 1, job_type, None, {}, status, at - timedelta(milliseconds=40), at
        )
        await record_job_execution(sessions, execution)

    points = await get_job_series(
        sessions, since=START, until=START + timedelta(minutes=4), bucket_seconds=60
    )
    assert [(p.start, p.completed, p.failed) for p in points] == [
        (START, 1, 1),
        (START + timedelta(minutes=1), 2, 0),
        (START + timedelta(minutes=2), 0, 1),
        (START + timedelta(minutes=3), 0, 0),
    ]
    assert points[0].average_ms == pytest.approx(40, abs=1)
    only_b = await get_job_series(
        sessions, since=START, until=START + timedelta(minutes=4), bucket_seconds=120, type="b"
    )
    assert [(p.completed, p.failed) for p in only_b] == [(1, 0), (0, 1)]


async def test_series_on_postgresql(app: ServerApp) -> None:
    await _check(app.sessions)


def test_series_on_sqlite(tmp_path: Path) -> None:
    """The development database: SQLite keeps times as text, bucketed by other SQL."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite3'}"
    upgrade(url)  # runs its own event loop, so this test is synchronous

    async def check() -> None:
        engine = create_engine(url)
        try:
            await _check(session_factory(engine))
        finally:
            await engine.dispose()

    asyncio.run(check())


async def test_too_many_buckets_are_refused(app: ServerApp) -> None:
    with pytest.raises(ValueError, match="more than 500 buckets"):
        await get_job_series(
            app.sessions, since=START, until=START + timedelta(days=1), bucket_seconds=60
        )
