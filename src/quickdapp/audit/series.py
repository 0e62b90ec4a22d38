"""The audit trail over time: attempts per time bucket, completed and failed, for charts.

Buckets of whole hours are summed from the hourly rollups (30 days: ~3,000 rows, not millions
of attempts), with the minute rollups for the parts of an hour at either end of the window and
worker_jobs for the parts of a minute; buckets of whole minutes start at the minutes. Other
bucket sizes (under a minute, or not whole minutes) group worker_jobs itself, which suits the
short windows they are used for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.audit.rollups import created_seconds, rows_in
from quickdapp.audit.times import EPOCH, check_time
from quickdapp.db.schema import WorkerJob, WorkerJobHour, WorkerJobMinute

MAX_BUCKETS = 500
# Rollups by unit, coarsest first: a bucket of whole hours reads hours, then minutes for the
# parts of an hour at the window's ends, then rows for the parts of a minute.
_LEVELS: list[tuple[int, type[WorkerJobMinute | WorkerJobHour], Any]] = [
    (3600, WorkerJobHour, WorkerJobHour.hour),
    (60, WorkerJobMinute, WorkerJobMinute.minute),
]


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
    pending = [(since, until)]  # the parts of the window no rollup has covered yet
    async with sessions() as session:
        for seconds, model, unit in _LEVELS:
            if bucket_seconds % seconds:
                continue
            whole, pending = _split(pending, timedelta(seconds=seconds))
            for index, status, attempts, duration_sum in await _rolled_up(
                session, model, unit, whole, bucket_seconds // seconds, type
            ):
                buckets.setdefault(int(index), _Bucket()).add(status, int(attempts), int(duration_sum))
        for index, status, attempts, duration_sum in await _raw(session, pending, bucket_seconds, type):
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


def _split(
    windows: list[tuple[datetime, datetime]], unit: timedelta
) -> tuple[list[tuple[int, int]], list[tuple[datetime, datetime]]]:
    """The whole units [first, last) inside each window, and the parts of a unit left over."""
    whole: list[tuple[int, int]] = []
    rest: list[tuple[datetime, datetime]] = []
    for start, end in windows:
        first, last = -(-(start - EPOCH) // unit), (end - EPOCH) // unit
        if first >= last:
            rest.append((start, end))
            continue
        whole.append((first, last))
        rest += [(start, EPOCH + first * unit), (EPOCH + last * unit, end)]
    return whole, [(start, end) for start, end in rest if start < end]


async def _rolled_up(
    session: AsyncSession,
    model: type[WorkerJobMinute | WorkerJobHour],
    unit: Any,
    ranges: list[tuple[int, int]],
    per_bucket: int,
    job_type: str | None,
) -> list[Any]:
    """(bucket, status, attempts, duration sum) from a rollup table's `unit`s in `ranges`."""
    if not ranges:
        return []
    index = unit // per_bucket
    conditions = [or_(*(and_(unit >= first, unit < last) for first, last in ranges))]
    if job_type is not None:
        conditions.append(model.type == job_type)
    result = await session.execute(
        select(index, model.status, func.sum(model.attempts), func.sum(model.duration_sum_ms))
        .where(*conditions)
        .group_by(index, model.status)
    )
    return list(result.all())


async def _raw(
    session: AsyncSession,
    windows: Sequence[tuple[datetime, datetime]],
    bucket_seconds: int,
    job_type: str | None,
) -> list[Any]:
    """(bucket, status, attempts, duration sum) of the worker_jobs rows in `windows`."""
    conditions = rows_in(windows, job_type)
    if conditions is None:
        return []
    index = created_seconds(session) // bucket_seconds
    result = await session.execute(
        select(index, WorkerJob.status, func.count(), func.sum(WorkerJob.duration_ms))
        .where(*conditions)
        .group_by(index, WorkerJob.status)
    )
    return list(result.all())
