"""cleanupAuditLog at table speed: bounded by id, asking only about jobs with no completed row."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.cleanup import delete_job_history_before
from quickdapp.audit.store import record_job_executions
from quickdapp.db.schema import WorkerJob, WorkerJobHour, WorkerJobHourBin, WorkerJobMinute
from quickdapp.jobs.cleanup_audit_log import CLEANUP_AUDIT_LOG, CleanupAuditLogData
from quickdapp.jobs.types import JobContext
from tests.audit.attempts import attempt

CUTOFF = datetime(2026, 2, 1, tzinfo=UTC)


async def _job_ids(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        return sorted(await session.scalars(select(WorkerJob.job_id)))


async def test_the_walk_stops_at_the_last_row_before_the_cutoff(app: ServerApp) -> None:
    old = [attempt(f"old-{i:02}", CUTOFF - timedelta(hours=1, seconds=i)) for i in range(10)]
    await record_job_executions(app.sessions, old)
    await record_job_executions(
        app.sessions, [attempt(f"new-{i:03}", CUTOFF + timedelta(seconds=i)) for i in range(300)]
    )
    # Written late (the highest id), yet created before the cutoff: the bound includes it.
    await record_job_executions(app.sessions, [attempt("late", CUTOFF - timedelta(hours=3))])
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(app.engine.sync_engine, "before_cursor_execute", count)
    try:
        deleted = await delete_job_history_before(app.sessions, CUTOFF, batch_size=4)
    finally:
        event.remove(app.engine.sync_engine, "before_cursor_execute", count)
    assert deleted == 11
    assert await _job_ids(app.sessions) == sorted(f"new-{i:03}" for i in range(300))
    # Ids 1-10 and 311 are past retention: batches of 4 ids up to 311, never past it.
    deletes = [s for s in statements if s.lstrip().upper().startswith("DELETE")]
    assert len(deletes) == -(-311 // 4)


async def test_only_jobs_without_a_completed_row_are_asked_about(app: ServerApp) -> None:
    before = CUTOFF - timedelta(days=1)
    await record_job_executions(
        app.sessions,
        [
            attempt("done", before),  # completed long ago
            attempt("retried", before, status="failed"),  # failed, then completed later
            attempt("retried", CUTOFF + timedelta(hours=1), number=2),
            attempt("failing", before, status="failed"),  # failed, nothing since
            attempt("failing", before + timedelta(minutes=1), status="failed", number=2),
            attempt("again", before, status="failed"),  # failed, failed again after the cutoff
            attempt("again", CUTOFF + timedelta(hours=1), status="failed", number=2),
        ],
    )
    asked: list[set[str]] = []

    async def keep(job_ids: set[str]) -> set[str]:
        asked.append(set(job_ids))
        return {"again"}  # still waiting for its next retry

    deleted = await delete_job_history_before(app.sessions, CUTOFF, keep=keep)

    assert asked == [{"failing", "again"}]
    assert deleted == 4
    async with app.sessions() as session:
        left = (await session.execute(select(WorkerJob.job_id, WorkerJob.attempt))).all()
    assert sorted(left) == [("again", 1), ("again", 2), ("retried", 2)]


async def test_the_job_keeps_rollups_of_deleted_rows_and_prunes_by_their_own_retention(
    app: ServerApp,
) -> None:
    now = datetime.now(UTC)
    await record_job_executions(
        app.sessions,
        [
            attempt("ancient", now - timedelta(days=500)),
            attempt("past-retention", now - timedelta(days=40)),
            attempt("recent", now - timedelta(days=1)),
        ],
    )

    async def cleanup(**data: int) -> dict[str, Any]:
        context = JobContext(
            app=app,
            logger=logging.LoggerAdapter(logging.getLogger("test")),
            job_id="cleanup",
            type="cleanupAuditLog",
            user_id=None,
            data=CleanupAuditLogData.model_validate(data),
            attempt=1,
        )
        outcome: dict[str, Any] = await CLEANUP_AUDIT_LOG.run(context)
        return outcome

    async def rollup_minutes() -> int:
        async with app.sessions() as session:
            minutes = list(await session.scalars(select(WorkerJobMinute.minute)))
            hours = list(await session.scalars(select(WorkerJobHour.hour)))
            bins = list(await session.scalars(select(WorkerJobHourBin.hour)))
        assert len(minutes) == len(hours) == len(bins)
        return len(minutes)

    first = await cleanup(retentionDays=30, rollupRetentionDays=100)
    assert (first["deleted"], first["rollupsDeleted"]) == (2, 3)  # its minute, hour and bin
    assert await _job_ids(app.sessions) == ["recent"]
    assert await rollup_minutes() == 2  # the deleted row of 40 days ago is still counted

    # Rollups never go before the rows they sum: 10 days here means the rows' 30.
    second = await cleanup(retentionDays=30, rollupRetentionDays=10)
    assert (second["deleted"], second["rollupsDeleted"]) == (0, 3)
    assert await rollup_minutes() == 1
