"""The audit trail over time: attempts per time bucket, completed and failed, for charts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.db.schema import WorkerJob

MAX_BUCKETS = 500


@dataclass(frozen=True)
class SeriesPoint:
    """Attempts that finished in [start, start + bucket)."""

    start: datetime
    completed: int
    failed: int
    average_ms: float


async def get_job_series(
    sessions: async_sessionmaker[AsyncSession],
    *,
    since: datetime,
    until: datetime,
    bucket_seconds: int,
    type: str | None = None,
) -> list[SeriesPoint]:
    """One point per bucket of `bucket_seconds` from `since` to `until`, empty buckets included."""
    if bucket_seconds < 1:
        raise ValueError(f"bucket_seconds must be >= 1, got {bucket_seconds}")
    if until <= since:
        raise ValueError("until must be after since")
    first = int(since.timestamp()) // bucket_seconds
    last = (int(until.timestamp()) - 1) // bucket_seconds
    if last - first + 1 > MAX_BUCKETS:
        raise ValueError(f"more than {MAX_BUCKETS} buckets: choose a larger bucket or a shorter range")
    conditions = [WorkerJob.created_at >= since, WorkerJob.created_at < until]
    if type is not None:
        conditions.append(WorkerJob.type == type)
    async with sessions() as session:
        bucket = _bucket(session.get_bind().dialect.name, bucket_seconds)
        rows = await session.execute(
            select(
                bucket.label("bucket"),
                func.sum(case((WorkerJob.status == "completed", 1), else_=0)).label("completed"),
                func.count().label("attempts"),
                func.avg(WorkerJob.duration_ms).label("average"),
            )
            .where(*conditions)
            .group_by(bucket)
        )
        found = {int(r.bucket): r for r in rows}
    points = []
    for index in range(first, last + 1):
        row = found.get(index)
        completed = int(row.completed) if row else 0
        points.append(
            SeriesPoint(
                start=datetime.fromtimestamp(index * bucket_seconds, UTC),
                completed=completed,
                failed=int(row.attempts) - completed if row else 0,
                average_ms=float(row.average) if row else 0.0,
            )
        )
    return points


def _bucket(dialect: str, bucket_seconds: int) -> Any:
    """The bucket number of a row: whole seconds since the epoch, divided by the bucket size."""
    if dialect == "postgresql":
        epoch = func.floor(func.extract("epoch", WorkerJob.created_at))
        return cast(func.floor(epoch / bucket_seconds), Integer)
    # SQLite keeps UTC text; strftime('%s') reads it as seconds since the epoch. SQLAlchemy
    # divides integers exactly, so cast back: truncation is floor for times after 1970.
    seconds = cast(func.strftime("%s", WorkerJob.created_at), Integer)
    return cast(seconds / bucket_seconds, Integer)
