"""Audit attempts for tests: made up, and read back from the database as plain tuples."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.attempts import JobExecution, Status
from quickdapp.db.schema import WorkerJob

TYPES = ("watchChain", "deployMulticall3", "cleanupAuditLog")


def attempt(
    job_id: str,
    at: datetime,
    *,
    type: str = "echo",
    status: Status = "completed",
    duration_ms: int = 10,
    user_id: int | None = None,
    number: int = 1,
) -> JobExecution:
    """An attempt of `job_id` that ended at `at` after `duration_ms`."""
    return JobExecution(
        job_id, number, type, user_id, {}, status, at - timedelta(milliseconds=duration_ms), at
    )


def random_attempts(count: int, start: datetime, span: timedelta, *, seed: int) -> list[JobExecution]:
    """`count` attempts of the production mix's types, spread at random over [start, start+span)."""
    rng = random.Random(seed)
    made = []
    for index in range(count):
        at = start + span * rng.random()
        made.append(
            attempt(
                f"job-{seed}-{index}",
                at,
                type=rng.choice(TYPES),
                status="failed" if rng.random() < 0.2 else "completed",
                duration_ms=max(0, round(rng.lognormvariate(4, 1.2))),
                user_id=rng.choice([None, 1, 2, 3]),
            )
        )
    return made


async def stored_rows(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    """Every worker_jobs row as (id, job_id, type, status, user_id, created_at, duration_ms)."""
    async with sessions() as session:
        result = await session.execute(
            select(
                WorkerJob.id,
                WorkerJob.job_id,
                WorkerJob.type,
                WorkerJob.status,
                WorkerJob.user_id,
                WorkerJob.created_at,
                WorkerJob.duration_ms,
            ).order_by(WorkerJob.id)
        )
        return list(result.all())
