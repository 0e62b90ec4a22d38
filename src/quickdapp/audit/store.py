"""Storing the audit trail: one `worker_jobs` row per attempt, and the rollups beside them."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.attempts import JobExecution
from quickdapp.audit.rollups import StoredAttempt, add_to_rollups
from quickdapp.db.schema import WorkerJob
from quickdapp.db.upsert import skip_statement


async def record_job_execution(
    sessions: async_sessionmaker[AsyncSession], execution: JobExecution
) -> None:
    """Store one attempt. Recording the same (job_id, attempt) twice keeps the first row."""
    await record_job_executions(sessions, [execution])


async def record_job_executions(
    sessions: async_sessionmaker[AsyncSession], executions: Sequence[JobExecution]
) -> int:
    """Store a batch of attempts and their rollups in one transaction; returns how many were new.

    The one way attempts enter the audit trail, for a batch of any size. An attempt already
    stored, or twice in the batch, keeps its first row and is counted in the rollups once:
    only the rows the insert reports back are added. So a batch may be retried whole after an
    error (nothing of it was committed) or delivered again after a commit (nothing changes),
    and the caller acknowledges it once this returns.
    """
    unique: dict[tuple[str, int], JobExecution] = {}
    for execution in executions:
        unique.setdefault((execution.job_id, execution.attempt), execution)
    # In time order, then by key: ids follow created_at as far as one batch can make them, and
    # concurrent batches lock the rows of the same attempts in one order (see audit.rollups).
    rows = [
        {
            "job_id": execution.job_id,
            "attempt": execution.attempt,
            "type": execution.type,
            "user_id": execution.user_id,
            "data": execution.data,
            "result": execution.result,
            "error": execution.error,
            "status": execution.status,
            "started_at": execution.started_at,
            "completed_at": execution.completed_at,
            "duration_ms": execution.duration_ms,
            "created_at": execution.completed_at,
        }
        for _, execution in sorted(unique.items(), key=lambda item: (item[1].completed_at, *item[0]))
    ]
    if not rows:
        return 0
    async with sessions.begin() as session:
        # A list of rows goes out as multi-row INSERTs of ~1,000 rows (insertmanyvalues), and
        # RETURNING reports only the rows stored: those, and only those, enter the rollups.
        inserted = await session.execute(_insert(session.get_bind().dialect.name), rows)
        stored = [StoredAttempt(*row) for row in inserted]
        await add_to_rollups(session, stored)
    return len(stored)


@cache
def _insert(dialect: str) -> Any:
    table: Table = WorkerJob.__table__  # type: ignore[assignment]
    columns = table.c
    return skip_statement(dialect, table, ("job_id", "attempt")).returning(
        columns.type, columns.status, columns.created_at, columns.duration_ms
    )
