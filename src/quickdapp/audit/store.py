"""The audit trail: one `worker_jobs` row per attempt, history queries and per-type metrics."""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import computed_field
from pydantic.dataclasses import dataclass as pydantic_dataclass
from sqlalchemy import Select, case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.attempts import JobExecution, Status
from quickdapp.db.schema import WorkerJob
from quickdapp.db.upsert import insert_or_skip

# Given job ids, returns those whose audit rows must not be deleted yet.
KeepJobs = Callable[[set[str]], Awaitable[set[str]]]


async def record_job_execution(
    sessions: async_sessionmaker[AsyncSession], execution: JobExecution
) -> None:
    """Store one attempt. Recording the same (job_id, attempt) twice keeps the first row."""
    await record_job_executions(sessions, [execution])


async def record_job_executions(
    sessions: async_sessionmaker[AsyncSession], executions: Sequence[JobExecution]
) -> None:
    """Store several attempts in one transaction (one commit); duplicates keep the first row."""
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
        for execution in executions
    ]
    async with sessions.begin() as session:
        await session.execute(insert_or_skip(session, WorkerJob, ["job_id", "attempt"]).values(rows))


@dataclass(frozen=True)
class HistoryPage:
    """One page of audit rows, newest first, and how many rows match in all."""

    items: list[WorkerJob]
    total: int
    limit: int
    offset: int


async def get_job_history(
    sessions: async_sessionmaker[AsyncSession],
    *,
    type: str | None = None,
    status: Status | None = None,
    user_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> HistoryPage:
    """Audit rows matching every filter given, newest first, `limit` at a time from `offset`."""
    if not 1 <= limit <= 1000:
        raise ValueError(f"limit must be between 1 and 1000, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    conditions = []
    if type is not None:
        conditions.append(WorkerJob.type == type)
    if status is not None:
        conditions.append(WorkerJob.status == status)
    if user_id is not None:
        conditions.append(WorkerJob.user_id == user_id)
    if since is not None:
        conditions.append(WorkerJob.created_at >= since)
    if until is not None:
        conditions.append(WorkerJob.created_at < until)
    async with sessions() as session:
        total = await session.scalar(select(func.count()).select_from(WorkerJob).where(*conditions))
        rows = await session.scalars(
            select(WorkerJob)
            .where(*conditions)
            .order_by(WorkerJob.created_at.desc(), WorkerJob.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return HistoryPage(items=list(rows), total=total or 0, limit=limit, offset=offset)


@pydantic_dataclass(frozen=True)
class JobMetrics:
    """Figures for one job type over a window of time."""

    type: str
    count: int
    completed: int
    failed: int
    average_ms: float
    p50_ms: float
    p95_ms: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def success_rate(self) -> float:
        return self.completed / self.count if self.count else 0.0


async def get_job_metrics(
    sessions: async_sessionmaker[AsyncSession],
    *,
    since: datetime,
    until: datetime | None = None,
    type: str | None = None,
) -> list[JobMetrics]:
    """Per job type: attempts, successes, failures and durations (mean, p50, p95) in the window."""
    conditions = [WorkerJob.created_at >= since]
    if until is not None:
        conditions.append(WorkerJob.created_at < until)
    if type is not None:
        conditions.append(WorkerJob.type == type)
    async with sessions() as session:
        if _dialect(session) == "postgresql":
            rows = (await session.execute(_metrics_with_percentiles(conditions))).all()
            return [
                JobMetrics(
                    r.type,
                    r.count,
                    r.completed,
                    r.count - r.completed,
                    float(r.average),
                    float(r.p50),
                    float(r.p95),
                )
                for r in rows
            ]
        # SQLite has no percentile function: fetch the durations and interpolate the same way.
        durations: dict[str, list[int]] = defaultdict(list)
        completed: dict[str, int] = defaultdict(int)
        result = await session.stream(
            select(WorkerJob.type, WorkerJob.duration_ms, WorkerJob.status).where(*conditions)
        )
        async for job_type, duration, job_status in result:
            durations[job_type].append(duration)
            completed[job_type] += job_status == "completed"
    return [
        JobMetrics(
            job_type,
            len(values),
            completed[job_type],
            len(values) - completed[job_type],
            sum(values) / len(values),
            percentile(values, 0.5),
            percentile(values, 0.95),
        )
        for job_type, values in sorted(durations.items())
    ]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _metrics_with_percentiles(conditions: list[Any]) -> Select[Any]:
    return (
        select(
            WorkerJob.type,
            func.count().label("count"),
            func.sum(case((WorkerJob.status == "completed", 1), else_=0)).label("completed"),
            func.avg(WorkerJob.duration_ms).label("average"),
            func.percentile_cont(0.5).within_group(WorkerJob.duration_ms).label("p50"),
            func.percentile_cont(0.95).within_group(WorkerJob.duration_ms).label("p95"),
        )
        .where(*conditions)
        .group_by(WorkerJob.type)
        .order_by(WorkerJob.type)
    )


def percentile(values: list[int], fraction: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont computes it."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def delete_job_history_before(
    sessions: async_sessionmaker[AsyncSession],
    cutoff: datetime,
    *,
    batch_size: int = 1000,
    keep: KeepJobs | None = None,
) -> int:
    """Delete audit rows created before `cutoff`, `batch_size` per transaction; returns the count.

    Small batches keep each transaction's locks short on a large table. `keep`, given the job
    ids of a batch, returns those whose rows must stay (jobs still running); they are skipped.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    deleted = 0
    after_id = 0  # rows are walked in id order, so rows kept are not read again
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(WorkerJob.id, WorkerJob.job_id)
                    .where(WorkerJob.created_at < cutoff, WorkerJob.id > after_id)
                    .order_by(WorkerJob.id)
                    .limit(batch_size)
                )
            ).all()
        if not rows:
            return deleted
        after_id = rows[-1].id
        kept = await keep({row.job_id for row in rows}) if keep is not None else set()
        ids = [row.id for row in rows if row.job_id not in kept]
        if ids:
            async with sessions.begin() as session:
                result = await session.execute(delete(WorkerJob).where(WorkerJob.id.in_(ids)))
            deleted += result.rowcount or 0  # type: ignore[attr-defined]
        if len(rows) < batch_size:
            return deleted


async def wait_for_rows(
    sessions: async_sessionmaker[AsyncSession], job_id: str, attempts: int, timeout: float
) -> bool:
    """Wait until job `job_id` has `attempts` audit rows (they arrive through the audit
    stream); False when they are not all there after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    statement = select(func.count()).select_from(WorkerJob).where(WorkerJob.job_id == job_id)
    while True:
        async with sessions() as session:
            if (await session.scalar(statement) or 0) >= attempts:
                return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
