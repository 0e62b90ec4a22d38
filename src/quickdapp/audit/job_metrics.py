"""Per job type over a window of time: attempts, successes, failures, mean, p50 and p95.

A window that holds no whole clock hour, or at most EXACT_MAX_ROWS attempts, is read from
worker_jobs and its figures are exact. A larger one reads the hourly rollups for its whole
hours and worker_jobs only for the parts of an hour at either end: counts and means stay
exact, p50/p95 come from the duration histogram, within histogram.RELATIVE_ERROR (4.4 %) of
the exact percentile_cont.

Rows are aggregated by the database (per type, status and duration, or per histogram bin),
so only a few hundred figures reach Python, on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import computed_field
from pydantic.dataclasses import dataclass as pydantic_dataclass
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.audit.histogram import duration_bin, estimated, percentile_of_counts
from quickdapp.audit.rollups import rows_in
from quickdapp.audit.times import EPOCH, HOUR, check_time, epoch_hour
from quickdapp.db.schema import WorkerJob, WorkerJobHourBin

EXACT_MAX_ROWS = 20_000
"""Windows of up to this many attempts get exact percentiles from worker_jobs."""


@pydantic_dataclass(frozen=True)
class JobMetrics:
    """Figures for one job type over a window of time.

    `exact_percentiles` is False when p50/p95 come from the hourly duration histogram (within
    4.4 % of the exact value); count, completed, failed and the mean are always exact.
    """

    type: str
    count: int
    completed: int
    failed: int
    average_ms: float
    p50_ms: float
    p95_ms: float
    exact_percentiles: bool = True

    @computed_field  # type: ignore[prop-decorator]
    @property
    def success_rate(self) -> float:
        return self.completed / self.count if self.count else 0.0


@dataclass
class _Tally:
    count: int = 0
    completed: int = 0
    duration_sum: int = 0
    durations: Counter[int] = field(default_factory=Counter)  # exact, ms -> attempts
    bins: Counter[int] = field(default_factory=Counter)  # histogram bin -> attempts

    def add(self, status: str, attempts: int, duration_sum: int) -> None:
        self.count += attempts
        self.completed += attempts if status == "completed" else 0
        self.duration_sum += duration_sum


async def get_job_metrics(
    sessions: async_sessionmaker[AsyncSession],
    *,
    since: datetime,
    until: datetime | None = None,
    type: str | None = None,
) -> list[JobMetrics]:
    """Figures per job type for the attempts that ended in [since, until) (until: now)."""
    end = until if until is not None else datetime.now(UTC)
    check_time("since", since)
    check_time("until", end)
    first_hour = -(-(since - EPOCH) // HOUR)  # the first whole hour inside the window
    last_hour = epoch_hour(end)  # the hour the window ends in
    async with sessions() as session:
        if first_hour >= last_hour:
            return _exact(await _raw(session, [(since, end)], type))
        edges = await _raw(
            session, [(since, EPOCH + first_hour * HOUR), (EPOCH + last_hour * HOUR, end)], type
        )
        hours = await _hours(session, first_hour, last_hour, type)
        rolled_up = _counts(hours)
        if sum(rolled_up.values()) + sum(_counts(edges).values()) <= EXACT_MAX_ROWS:
            # Few rows: read the whole hours too, for exact percentiles, unless worker_jobs no
            # longer holds what the rollups count (cleaned up, or written around them).
            middle = await _raw(session, [(EPOCH + first_hour * HOUR, EPOCH + last_hour * HOUR)], type)
            if _counts(middle) == rolled_up:
                return _exact([*edges, *middle])
    tallies: dict[str, _Tally] = {}
    for job_type, status, duration, attempts in edges:
        tally = tallies.setdefault(job_type, _Tally())
        tally.add(status, attempts, duration * attempts)
        tally.bins[duration_bin(duration)] += attempts
    for job_type, status, bin_index, attempts, duration_sum in hours:
        tally = tallies.setdefault(job_type, _Tally())
        tally.add(status, int(attempts), int(duration_sum))
        tally.bins[bin_index] += int(attempts)
    return [_figures(job_type, tally, exact=False) for job_type, tally in sorted(tallies.items())]


def _exact(rows: list[Any]) -> list[JobMetrics]:
    """Figures from (type, status, duration, attempts) rows of worker_jobs."""
    tallies: dict[str, _Tally] = {}
    for job_type, status, duration, attempts in rows:
        tally = tallies.setdefault(job_type, _Tally())
        tally.add(status, attempts, duration * attempts)
        tally.durations[duration] += attempts
    return [_figures(job_type, tally, exact=True) for job_type, tally in sorted(tallies.items())]


def _counts(rows: list[Any]) -> Counter[tuple[str, str]]:
    """Attempts per (type, status) of grouped rows (type, status, duration or bin, attempts, ...)."""
    counts: Counter[tuple[str, str]] = Counter()
    for row in rows:
        counts[(row[0], row[1])] += int(row[3])
    return counts


def _figures(job_type: str, tally: _Tally, *, exact: bool) -> JobMetrics:
    values = {float(ms): n for ms, n in tally.durations.items()} if exact else estimated(tally.bins)
    return JobMetrics(
        type=job_type,
        count=tally.count,
        completed=tally.completed,
        failed=tally.count - tally.completed,
        average_ms=tally.duration_sum / tally.count if tally.count else 0.0,
        p50_ms=percentile_of_counts(values, 0.5),
        p95_ms=percentile_of_counts(values, 0.95),
        exact_percentiles=exact,
    )


async def _raw(
    session: AsyncSession, windows: Sequence[tuple[datetime, datetime]], job_type: str | None
) -> list[Any]:
    """(type, status, duration_ms, attempts) of the rows in any of `windows`, grouped."""
    conditions = rows_in(windows, job_type)
    if conditions is None:
        return []
    columns = (WorkerJob.type, WorkerJob.status, WorkerJob.duration_ms)
    result = await session.execute(select(*columns, func.count()).where(*conditions).group_by(*columns))
    return list(result.all())


async def _hours(
    session: AsyncSession, first_hour: int, last_hour: int, job_type: str | None
) -> list[Any]:
    """(type, status, bin, attempts, duration sum) over the hours [first_hour, last_hour)."""
    conditions = [WorkerJobHourBin.hour >= first_hour, WorkerJobHourBin.hour < last_hour]
    if job_type is not None:
        conditions.append(WorkerJobHourBin.type == job_type)
    columns = (WorkerJobHourBin.type, WorkerJobHourBin.status, WorkerJobHourBin.duration_bin)
    result = await session.execute(
        select(*columns, func.sum(WorkerJobHourBin.attempts), func.sum(WorkerJobHourBin.duration_sum_ms))
        .where(*conditions)
        .group_by(*columns)
    )
    return list(result.all())
