"""Audit attempts for tests: made up, and read back (rows and rollups) as plain values."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.attempts import JobExecution, Status
from quickdapp.audit.histogram import duration_bin
from quickdapp.audit.times import epoch_hour, epoch_minute
from quickdapp.db.schema import WorkerJob, WorkerJobHour, WorkerJobHourBin, WorkerJobMinute

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


Groups = dict[str, Counter[tuple[Any, ...]]]


def expected_rollups(rows: list[Any]) -> Groups:
    """What the rollups must hold for `rows` (of stored_rows): per minute, per hour, and per
    hour and duration bin, attempts and duration sums as counters of (key..., 'n' | 'sum')."""
    groups: Groups = {"minutes": Counter(), "hours": Counter(), "bins": Counter()}
    for row in rows:
        hour = epoch_hour(row.created_at)
        for name, key in (
            ("minutes", (epoch_minute(row.created_at), row.type, row.status)),
            ("hours", (hour, row.type, row.status)),
            ("bins", (hour, row.type, row.status, duration_bin(row.duration_ms))),
        ):
            groups[name][(*key, "n")] += 1
            groups[name][(*key, "sum")] += row.duration_ms
    return {name: +counter for name, counter in groups.items()}


async def stored_rollups(sessions: async_sessionmaker[AsyncSession]) -> Groups:
    """What the rollups hold, in the shape of expected_rollups."""
    groups: Groups = {"minutes": Counter(), "hours": Counter(), "bins": Counter()}
    async with sessions() as session:
        for m in await session.scalars(select(WorkerJobMinute)):
            groups["minutes"][(m.minute, m.type, m.status, "n")] += m.attempts
            groups["minutes"][(m.minute, m.type, m.status, "sum")] += m.duration_sum_ms
        for h in await session.scalars(select(WorkerJobHour)):
            groups["hours"][(h.hour, h.type, h.status, "n")] += h.attempts
            groups["hours"][(h.hour, h.type, h.status, "sum")] += h.duration_sum_ms
        for b in await session.scalars(select(WorkerJobHourBin)):
            groups["bins"][(b.hour, b.type, b.status, b.duration_bin, "n")] += b.attempts
            groups["bins"][(b.hour, b.type, b.status, b.duration_bin, "sum")] += b.duration_sum_ms
    return {name: +counter for name, counter in groups.items()}
