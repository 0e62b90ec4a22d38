"""Rollups of the audit trail: attempts per minute, per hour, and per hour and duration bin.

`add_to_rollups` runs inside the transaction that stores the attempts (record_job_executions)
and counts only the rows that insert actually stored, so a redelivered attempt is never counted
twice. `rebuild_rollups` recomputes them from worker_jobs, for rows imported or repaired by hand.

Writers take row locks in one global order (raw rows by (created_at, job_id, attempt), then
minutes, hours and hour bins, each sorted), so concurrent batches wait for each other but never
deadlock. (Two different versions of one attempt, with other end times, could still cross;
PostgreSQL then aborts one batch, which its writer retries whole.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, Table, and_, cast, delete, func, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from quickdapp.audit.histogram import duration_bin
from quickdapp.audit.times import EPOCH, HOUR, MINUTE, check_time, epoch_hour, epoch_minute
from quickdapp.db.schema import WorkerJob, WorkerJobHour, WorkerJobHourBin, WorkerJobMinute
from quickdapp.db.upsert import add_statement

logger = logging.getLogger(__name__)

_REBUILD_SPAN = timedelta(days=1)  # raw rows aggregated per rebuild transaction


@dataclass(frozen=True, slots=True)
class StoredAttempt:
    """What the rollups need of an attempt that was stored."""

    type: str
    status: str
    created_at: datetime
    duration_ms: int


MinuteKey = tuple[int, str, str]  # minute, type, status
HourKey = tuple[int, str, str]  # hour, type, status
BinKey = tuple[int, str, str, int]  # hour, type, status, duration bin


async def add_to_rollups(session: AsyncSession, attempts: Iterable[StoredAttempt]) -> None:
    """Add stored attempts to the rollups, in the caller's transaction."""
    minutes: dict[MinuteKey, list[int]] = {}
    hours: dict[HourKey, list[int]] = {}
    bins: dict[BinKey, list[int]] = {}
    for attempt in attempts:
        at, job_type, status, ms = attempt.created_at, attempt.type, attempt.status, attempt.duration_ms
        hour = epoch_hour(at)
        for cell in (
            minutes.setdefault((epoch_minute(at), job_type, status), [0, 0]),
            hours.setdefault((hour, job_type, status), [0, 0]),
            bins.setdefault((hour, job_type, status, duration_bin(ms)), [0, 0]),
        ):
            cell[0] += 1
            cell[1] += ms
    await _add(session, WorkerJobMinute, ["minute", "type", "status"], minutes)
    await _add(session, WorkerJobHour, ["hour", "type", "status"], hours)
    await _add(session, WorkerJobHourBin, ["hour", "type", "status", "duration_bin"], bins)


async def _add(
    session: AsyncSession,
    model: type[WorkerJobMinute | WorkerJobHour | WorkerJobHourBin],
    key: list[str],
    cells: Mapping[tuple[Any, ...], list[int]],
) -> None:
    """Upsert `cells` (key -> [attempts, duration sum]) in key order, adding to stored counts."""
    if not cells:
        return
    rows = [
        {**dict(zip(key, cell_key, strict=True)), "attempts": n, "duration_sum_ms": total}
        for cell_key, (n, total) in sorted(cells.items())
    ]
    table: Table = model.__table__  # type: ignore[assignment]
    dialect = session.get_bind().dialect.name
    statement = add_statement(dialect, table, tuple(key), ("attempts", "duration_sum_ms"))
    await session.execute(statement, rows)


def created_minute(session: AsyncSession) -> Any:
    """SQL for epoch_minute(worker_jobs.created_at)."""
    return created_seconds(session) // 60


def created_hour(session: AsyncSession) -> Any:
    """SQL for epoch_hour(worker_jobs.created_at)."""
    return created_seconds(session) // 3600


def created_seconds(session: AsyncSession) -> Any:
    """SQL for the whole seconds since 1970 (floored) of worker_jobs.created_at."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", WorkerJob.created_at)), BigInteger)
    # SQLite keeps UTC text; strftime('%s') reads it as whole seconds since the epoch.
    return cast(func.strftime("%s", WorkerJob.created_at), Integer)


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild replaced: the hours [first_hour, last_hour) and the rows read."""

    first_hour: datetime | None
    last_hour: datetime | None
    hours: int
    rows: int


async def rebuild_rollups(
    sessions: async_sessionmaker[AsyncSession],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> RebuildReport:
    """Recompute the rollups from worker_jobs.

    With `since` or `until`, every whole hour touching [since, until) is replaced by what
    worker_jobs holds, empty hours too. With neither, only the hours that hold rows are
    replaced: rollups of hours whose rows cleanupAuditLog deleted are history, and stay.
    One transaction per day of rows, so writers are held up briefly and never blocked long.
    """
    check_time("since", since)
    check_time("until", until)
    every_hour = since is not None or until is not None
    async with sessions() as session:
        oldest, newest = (
            await session.execute(select(func.min(WorkerJob.created_at), func.max(WorkerJob.created_at)))
        ).one()
    start = since if since is not None else oldest
    if until is not None:
        end: datetime | None = until
    elif every_hour:
        end = datetime.now(UTC)
    else:
        end = newest + MINUTE if newest is not None else None
    if start is None or end is None or start >= end:
        return RebuildReport(None, None, 0, 0)
    first_hour, last_hour = epoch_hour(start), -(-(end - EPOCH) // HOUR)
    hours = rows = 0
    for chunk_start in range(first_hour, last_hour, _REBUILD_SPAN // HOUR):
        chunk_end = min(chunk_start + _REBUILD_SPAN // HOUR, last_hour)
        async with sessions.begin() as session:
            replaced, read = await _rebuild_hours(session, chunk_start, chunk_end, every_hour)
        hours += replaced
        rows += read
    logger.info("rebuilt rollups of %d hours from %d audit rows", hours, rows)
    return RebuildReport(EPOCH + first_hour * HOUR, EPOCH + last_hour * HOUR, hours, rows)


async def _rebuild_hours(
    session: AsyncSession, first_hour: int, last_hour: int, every_hour: bool
) -> tuple[int, int]:
    """Replace the rollups of hours [first_hour, last_hour); returns (hours replaced, rows read)."""
    window = [
        WorkerJob.created_at >= EPOCH + first_hour * HOUR,
        WorkerJob.created_at < EPOCH + last_hour * HOUR,
    ]
    if every_hour:
        ranges = [(first_hour, last_hour)]
    else:
        found = await session.scalars(select(created_hour(session)).where(*window).distinct())
        ranges = _runs(sorted(int(hour) for hour in found))
    if not ranges:
        return 0, 0
    # Delete first: a writer still holding one of these rows finishes before the counts below
    # are read, and one that writes later adds to the new rows (see the module's docstring).
    stored = WorkerJobMinute.minute
    minutes = [and_(stored >= a * 60, stored < b * 60) for a, b in ranges]
    await session.execute(delete(WorkerJobMinute).where(or_(*minutes)))
    for hourly in (WorkerJobHour, WorkerJobHourBin):
        hours = [and_(hourly.hour >= a, hourly.hour < b) for a, b in ranges]
        await session.execute(delete(hourly).where(or_(*hours)))
    hour = created_hour(session)
    totals: list[tuple[type[WorkerJobMinute | WorkerJobHour], str, Any]] = [
        (WorkerJobMinute, "minute", created_minute(session)),
        (WorkerJobHour, "hour", hour),
    ]
    for model, column, unit in totals:
        await session.execute(
            insert(model).from_select(
                [column, "type", "status", "attempts", "duration_sum_ms"],
                select(
                    unit,
                    WorkerJob.type,
                    WorkerJob.status,
                    func.count(),
                    func.coalesce(func.sum(WorkerJob.duration_ms), literal(0)),
                )
                .where(*window)
                .group_by(unit, WorkerJob.type, WorkerJob.status),
            )
        )
    counts = await session.execute(
        select(hour, WorkerJob.type, WorkerJob.status, WorkerJob.duration_ms, func.count())
        .where(*window)
        .group_by(hour, WorkerJob.type, WorkerJob.status, WorkerJob.duration_ms)
    )
    cells: dict[BinKey, list[int]] = {}
    rows = 0
    for at_hour, job_type, status, duration, count in counts:
        cell = cells.setdefault((int(at_hour), job_type, status, duration_bin(duration)), [0, 0])
        cell[0] += count
        cell[1] += duration * count
        rows += count
    await _add(session, WorkerJobHourBin, ["hour", "type", "status", "duration_bin"], cells)
    return sum(b - a for a, b in ranges), rows


def _runs(hours: list[int]) -> list[tuple[int, int]]:
    """Sorted hours as [start, end) runs of consecutive hours."""
    runs: list[tuple[int, int]] = []
    for hour in hours:
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + 1)
        else:
            runs.append((hour, hour + 1))
    return runs


async def ensure_rollups(sessions: async_sessionmaker[AsyncSession]) -> RebuildReport | None:
    """Build the rollups when there are none but audit rows exist (after migration 0003)."""
    async with sessions() as session:
        has_rollups = await session.scalar(select(WorkerJobMinute.minute).limit(1))
        has_rows = await session.scalar(select(WorkerJob.id).limit(1))
    if has_rollups is not None or has_rows is None:
        return None
    return await rebuild_rollups(sessions)


async def prune_rollups(sessions: async_sessionmaker[AsyncSession], before: datetime) -> int:
    """Delete the rollups of minutes and hours that end at or before `before`; returns the count."""
    deleted = 0
    async with sessions.begin() as session:
        for statement in (
            delete(WorkerJobMinute).where(WorkerJobMinute.minute < epoch_minute(before)),
            delete(WorkerJobHour).where(WorkerJobHour.hour < epoch_hour(before)),
            delete(WorkerJobHourBin).where(WorkerJobHourBin.hour < epoch_hour(before)),
        ):
            result = await session.execute(statement)
            deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return deleted


def rows_in(
    windows: Sequence[tuple[datetime, datetime]], job_type: str | None
) -> list[ColumnElement[bool]] | None:
    """WHERE conditions for the worker_jobs rows created in any of `windows` (the stretches at
    a window's ends that whole rollup periods do not cover), of `job_type` if given; None when
    every window is empty."""
    ranges = [
        and_(WorkerJob.created_at >= start, WorkerJob.created_at < end)
        for start, end in windows
        if start < end
    ]
    if not ranges:
        return None
    conditions: list[ColumnElement[bool]] = [or_(*ranges)]
    if job_type is not None:
        conditions.append(WorkerJob.type == job_type)
    return conditions
