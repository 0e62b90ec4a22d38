"""The chart's series from the minute rollups equals the series counted from the rows."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.audit.series import get_job_series
from quickdapp.audit.store import record_job_executions
from quickdapp.audit.times import EPOCH
from tests.audit.attempts import random_attempts, stored_rows

T0 = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "bucket_seconds"),
    [
        # Windows that start and end inside a minute, so both ends are read from the rows.
        (T0 + timedelta(seconds=17.5), T0 + timedelta(hours=5, seconds=42), 300),
        (T0 + timedelta(seconds=17.5), T0 + timedelta(hours=5, seconds=42), 3600),
        (T0 - timedelta(days=1), T0 + timedelta(days=1), 7200),
        (T0 + timedelta(minutes=3, seconds=1), T0 + timedelta(minutes=3, seconds=50), 60),
        (T0 + timedelta(minutes=3), T0 + timedelta(hours=2), 90),  # not whole minutes: rows
    ],
)
async def test_series_matches_the_rows(
    sessions: async_sessionmaker[AsyncSession], since: datetime, until: datetime, bucket_seconds: int
) -> None:
    await record_job_executions(sessions, random_attempts(2000, T0, timedelta(hours=6), seed=11))
    rows = [r for r in await stored_rows(sessions) if since <= r.created_at < until]
    for job_type in (None, "watchChain"):
        expected: Counter[tuple[int, str]] = Counter()
        durations: Counter[int] = Counter()
        for row in rows:
            if job_type is None or row.type == job_type:
                index = int((row.created_at - EPOCH).total_seconds()) // bucket_seconds
                expected[(index, row.status)] += 1
                durations[index] += row.duration_ms

        points = await get_job_series(
            sessions, since=since, until=until, bucket_seconds=bucket_seconds, type=job_type
        )

        first = int((since - EPOCH).total_seconds()) // bucket_seconds
        assert points[0].start == EPOCH + timedelta(seconds=first * bucket_seconds)
        for offset, point in enumerate(points):
            index = first + offset
            assert (point.completed, point.failed) == (
                expected[(index, "completed")],
                expected[(index, "failed")],
            ), (point.start, job_type)
            attempts = point.completed + point.failed
            assert point.average_ms == pytest.approx(durations[index] / attempts if attempts else 0)
        assert sum(p.completed + p.failed for p in points) == sum(expected.values())


async def test_bounds_are_refused_with_a_reason(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(ValueError, match="more than 500 buckets"):
        await get_job_series(sessions, since=T0, until=T0 + timedelta(days=1), bucket_seconds=60)
    with pytest.raises(ValueError, match="until must be after since"):
        await get_job_series(sessions, since=T0, until=T0, bucket_seconds=60)
    with pytest.raises(ValueError, match="since must be between 1970 and 9000"):
        await get_job_series(
            sessions, since=datetime(1960, 1, 1, tzinfo=UTC), until=T0, bucket_seconds=10**9
        )
