"""Deleting audit rows past retention, at the speed of the table, never a running job's rows.

The walk goes by id, in batches, and stops at the id of the last row created before the
cutoff: rows are written in time order, so that id bounds it, and no batch reads on to the
table's end. Each batch is one short transaction that deletes rows by id; it never touches
the rows being inserted meanwhile (newer ids), so writers are not held up.

A job with a completed attempt is finished for good, so its rows may go without asking
anyone. Only jobs whose rows so far are all failures might still be running or waiting for a
retry: those, and only those, are put to `keep` (which asks Redis, see cleanupAuditLog).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.audit.times import check_time
from quickdapp.db.schema import WorkerJob

# Given job ids, returns those whose audit rows must not be deleted yet.
KeepJobs = Callable[[set[str]], Awaitable[set[str]]]


async def delete_job_history_before(
    sessions: async_sessionmaker[AsyncSession],
    cutoff: datetime,
    *,
    batch_size: int = 5000,
    keep: KeepJobs | None = None,
) -> int:
    """Delete audit rows created before `cutoff`, `batch_size` per transaction; returns the count.

    `keep`, given the ids of jobs that have no completed attempt, returns those whose rows must
    stay (jobs still running or waiting for a retry); their rows are skipped.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    check_time("cutoff", cutoff)
    async with sessions() as session:
        # The index on (created_at, id) answers this from its entries before the cutoff.
        last_id = await session.scalar(
            select(func.max(WorkerJob.id)).where(WorkerJob.created_at < cutoff)
        )
    if last_id is None:
        return 0
    deleted = 0
    after_id = 0  # rows are walked in id order, so rows kept are not read again
    while after_id < last_id:
        async with sessions.begin() as session:
            rows = (
                await session.execute(
                    select(WorkerJob.id, WorkerJob.job_id, WorkerJob.status)
                    .where(WorkerJob.id > after_id, WorkerJob.id <= last_id)
                    .where(WorkerJob.created_at < cutoff)
                    .order_by(WorkerJob.id)
                    .limit(batch_size)
                )
            ).all()
            if not rows:
                break
            after_id = rows[-1].id
            kept = await _kept(session, rows, keep)
            ids = [row.id for row in rows if row.job_id not in kept]
            if ids:
                result = await session.execute(delete(WorkerJob).where(WorkerJob.id.in_(ids)))
                deleted += result.rowcount or 0  # type: ignore[attr-defined]
        if len(rows) < batch_size:
            break
    return deleted


async def _kept(session: AsyncSession, rows: Sequence[Any], keep: KeepJobs | None) -> set[str]:
    """The job ids of `rows` whose rows must stay."""
    if keep is None:
        return set()
    open_jobs = {row.job_id for row in rows} - {row.job_id for row in rows if row.status == "completed"}
    if not open_jobs:
        return set()
    # A completed attempt elsewhere in the table (a later one, usually) closes the job too.
    completed = await session.scalars(
        select(WorkerJob.job_id)
        .where(WorkerJob.job_id.in_(sorted(open_jobs)), WorkerJob.status == "completed")
        .distinct()
    )
    open_jobs -= set(completed)
    return await keep(open_jobs) if open_jobs else set()
