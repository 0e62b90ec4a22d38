"""Audit rows made by hand, for tests of the audit store and of what reads it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.attempts import JobExecution, Status
from quickdapp.db.schema import WorkerJob


def execution(
    job_id: str,
    *,
    type: str = "echo",
    status: Status = "completed",
    at: datetime | None = None,
    duration_ms: int = 0,
    attempt: int = 1,
    user_id: int | None = None,
    data: dict[str, Any] | None = None,
    result: Any = None,
    error: str | None = None,
) -> JobExecution:
    """A finished attempt of `job_id` that ended `at` (now by default) after `duration_ms`."""
    ended = at or datetime.now(UTC)
    return JobExecution(
        job_id=job_id,
        attempt=attempt,
        type=type,
        user_id=user_id,
        data=data or {},
        status=status,
        started_at=ended - timedelta(milliseconds=duration_ms),
        completed_at=ended,
        result=result,
        error=error,
    )


async def audit_job_ids(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """The job id of every audit row, sorted."""
    async with sessions() as session:
        return sorted(await session.scalars(select(WorkerJob.job_id)))
