"""The audit trail over time: attempts per time bucket, completed and failed, for charts.

Buckets of whole minutes are summed from the per-minute rollups, with worker_jobs read only
for the parts of a minute at either end of the window: 30 days are ~45,000 rollup rows, not
millions of attempts. Other bucket sizes (under a minute, or not whole minutes) group
worker_jobs itself, which suits the short windows they are used for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.audit.rollups import created_seconds
from quickdapp.audit.times import EPOCH, MINUTE, check_time, epoch_minute
from quickdapp.db.schema import WorkerJob, WorkerJobMinute

MAX_BUCKETS = 500


@dataclass(frozen=True)
class SeriesPoint:
    """Attempts that finished in [start, start + bucket)."""

    start: datetime
    completed: int
    failed: int
    average_ms: float


@dataclass
class _Bucket:
    completed: int = 0
    failed: int = 0
    duration_sum: int = 0

    def add(self, status: str, attempts: int, duration_sum: int) -> None:
        if status == "completed":
            self.completed += attempts
        else:
            self.failed += attempts
        self.duration_sum += duration_sum


async def get_job_series(
    sessions: async_sessionmaker[AsyncSession],
    *,
    since: datetime,
    until: datetime,
    bucket_seconds: int,
    type: str | None = None,
) -> list[SeriesPoint]:
    """One point per bucket of `bucket_seconds` from `since` to `until`, empty buckets included.

    Buckets are aligned to multiples of `bucket_seconds` since 1970 (UTC); the first and last
    may hold only the part of them inside the window.
    """
    if bucket_seconds < 1:
        raise ValueError(f"bucket_seconds must be >= 1, got {bucket_seconds}")
    check_time("since", since)
    check_time("until", until)
    if until <= since:
        raise ValueError("until must be after since")
    first = int((since - EPOCH).total_seconds()) // bucket_seconds
    last = (int((until - EPOCH).total_seconds()) - 1) // bucket_seconds
    if last - first + 1 > MAX_BUCKETS:
        raise ValueError(f"more than {MAX_BUCKETS} buckets: choose a larger bucket or a shorter range")
    buckets: dict[int, _Bucket] = {}
    async with sessions() as session:
        first_minute = -(-(since - EPOCH) // MINUTE)
        last_minute = epoch_minute(until)
        if bucket_seconds % 60 or first_minute >= last_minute:
            raw = [(since, until)]
        else:
            raw = [(since, EPOCH + first_minute * MINUTE), (EPOCH + last_minute * MINUTE, until)]
            per_bucket = bucket_seconds // 60
            for index, status, attempts, duration_sum in await _minutes(
                session, first_minute, last_minute, per_bucket, type
            ):
                buckets.setdefault(int(index), _Bucket()).add(status, int(attempts), int(duration_sum))
        for index, status, attempts, duration_sum in await _raw(session, raw, bucket_seconds, type):
            buckets.setdefault(int(index), _Bucket()).add(status, int(attempts), int(duration_sum or 0))
    points = []
    for index in range(first, last + 1):
        bucket = buckets.get(index, _Bucket())
        attempts = bucket.completed + bucket.failed
        points.append(
            SeriesPoint(
                start=EPOCH + timedelta(seconds=index * bucket_seconds),
                completed=bucket.completed,
                failed=bucket.failed,
                average_ms=bucket.duration_sum / attempts if attempts else 0.0,
            )
        )
    return points


async def _minutes(
    session: AsyncSession, first_minute: int, last_minute: int, per_bucket: int, job_type: str | None
) -> list[Any]:
    """(bucket, status, attempts, duration sum) from the minute rollups in [first, last)."""
    index = WorkerJobMinute.minute // per_bucket
    conditions = [WorkerJobMinute.minute >= first_minute, WorkerJobMinute.minute < last_minute]
    if job_type is not None:
        conditions.append(WorkerJobMinute.type == job_type)
    result = await session.execute(
        select(
            index,
            WorkerJobMinute.status,
            func.sum(WorkerJobMinute.attempts),
            func.sum(WorkerJobMinute.duration_sum_ms),
        )
        .where(*conditions)
        .group_by(index, WorkerJobMinute.status)
    )
    return list(result.all())


async def _raw(
    session: AsyncSession,
    windows: Sequence[tuple[datetime, datetime]],
    bucket_seconds: int,
    job_type: str | None,
) -> list[Any]:
    """(bucket, status, attempts, duration sum) of the worker_jobs rows in `windows`."""
    ranges = [
        and_(WorkerJob.created_at >= start, WorkerJob.created_at < end)
        for start, end in windows
        if start < end
    ]
    if not ranges:
        return []
    conditions = [or_(*ranges)]
    if job_type is not None:
        conditions.append(WorkerJob.type == job_type)
    index = created_seconds(session) // bucket_seconds
    result = await session.execute(
        select(index, WorkerJob.status, func.count(), func.sum(WorkerJob.duration_ms))
        .where(*conditions)
        .group_by(index, WorkerJob.status)
    )
    return list(result.all())
