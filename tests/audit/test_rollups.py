"""Rollups against the raw rows: equal to a GROUP BY over worker_jobs, whatever happened."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.audit.cleanup import delete_job_history_before
from quickdapp.audit.rollups import ensure_rollups, prune_rollups, rebuild_rollups
from quickdapp.audit.store import record_job_executions
from quickdapp.audit.times import epoch_hour, epoch_minute
from quickdapp.db.schema import WorkerJob, WorkerJobHour, WorkerJobHourBin, WorkerJobMinute
from tests.audit.attempts import (
    attempt,
    expected_rollups,
    random_attempts,
    stored_rollups,
    stored_rows,
)

T0 = datetime(2026, 3, 1, 11, 58, tzinfo=UTC)
SPAN = timedelta(hours=3)


async def _assert_rollups_match_rows(sessions: async_sessionmaker[AsyncSession]) -> None:
    assert await stored_rollups(sessions) == expected_rollups(await stored_rows(sessions))


async def test_rollups_equal_a_group_by_of_the_rows_also_after_duplicates(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    made = random_attempts(400, T0, SPAN, seed=1)
    assert await record_job_executions(sessions, made[:250]) == 250
    # Redelivered: some already stored, some twice in one batch, some new.
    again = [*made[200:300], *made[280:320], *made[240:260]]
    assert await record_job_executions(sessions, again) == 70
    # The same attempt with another outcome keeps the first row and is not counted again.
    changed = [attempt(e.job_id, e.completed_at, status="failed", duration_ms=99) for e in made[:50]]
    assert await record_job_executions(sessions, changed) == 0
    assert await record_job_executions(sessions, made[320:]) == 80
    assert await record_job_executions(sessions, []) == 0

    assert len(await stored_rows(sessions)) == 400
    await _assert_rollups_match_rows(sessions)


async def test_concurrent_batches_with_overlaps_count_each_attempt_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    made = random_attempts(600, T0, timedelta(minutes=20), seed=2)
    # Eight writers, each batch overlapping its neighbours', all in the same few rollup rows.
    batches = [made[start : start + 120] for start in range(0, 560, 70)]
    counts = await asyncio.gather(*(record_job_executions(sessions, batch) for batch in batches))

    assert sum(counts) == len({e.job_id for batch in batches for e in batch})
    await _assert_rollups_match_rows(sessions)


async def test_cleanup_keeps_the_rollups_and_pruning_drops_only_older_ones(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await record_job_executions(sessions, random_attempts(300, T0, SPAN, seed=4))
    before_cleanup = await stored_rollups(sessions)
    cutoff = T0 + timedelta(hours=1, minutes=17, seconds=30)

    deleted = await delete_job_history_before(sessions, cutoff, batch_size=50)

    rows = await stored_rows(sessions)
    assert deleted > 0 and all(row.created_at >= cutoff for row in rows)
    assert await stored_rollups(sessions) == before_cleanup  # the history of deleted rows stays
    pruned = await prune_rollups(sessions, cutoff)
    stored, expected = await stored_rollups(sessions), expected_rollups(rows)
    # What is left is the minutes and hours from the cutoff's on; those after it match the rows.
    assert pruned > 0
    for name, unit in (
        ("minutes", epoch_minute(cutoff)),
        ("hours", epoch_hour(cutoff)),
        ("bins", epoch_hour(cutoff)),
    ):
        assert min(key[0] for key in stored[name]) >= unit
        assert {k: v for k, v in stored[name].items() if k[0] > unit} == {
            k: v for k, v in expected[name].items() if k[0] > unit
        }


async def test_rebuild_recomputes_rollups_from_rows_written_around_them(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await record_job_executions(sessions, random_attempts(200, T0, SPAN, seed=5))
    # Imported by hand (no rollups), and rollups damaged by hand.
    imported = random_attempts(150, T0 - timedelta(days=2), SPAN, seed=6)
    async with sessions.begin() as session:
        await session.execute(
            insert(WorkerJob),
            [
                {
                    "job_id": e.job_id,
                    "attempt": 1,
                    "type": e.type,
                    "user_id": None,
                    "data": {},
                    "status": e.status,
                    "started_at": e.started_at,
                    "completed_at": e.completed_at,
                    "duration_ms": e.duration_ms,
                    "created_at": e.completed_at,
                }
                for e in imported
            ],
        )
        await session.execute(delete(WorkerJobMinute).where(WorkerJobMinute.type == "watchChain"))
        await session.execute(
            insert(WorkerJobHourBin).values(
                hour=epoch_hour(T0),
                type="x",
                status="failed",
                duration_bin=3,
                attempts=7,
                duration_sum_ms=7,
            )
        )

    report = await rebuild_rollups(sessions)

    assert report.rows == 350
    await _assert_rollups_match_rows(sessions)


async def test_rebuild_keeps_hours_without_rows_unless_given_a_range(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    old = T0 - timedelta(days=10)
    await record_job_executions(sessions, [attempt("old", old), attempt("new", T0)])
    async with sessions.begin() as session:
        await session.execute(delete(WorkerJob).where(WorkerJob.job_id == "old"))  # cleaned up

    await rebuild_rollups(sessions)
    minutes = (await stored_rollups(sessions))["minutes"]
    assert (epoch_minute(old), "echo", "completed", "n") in minutes  # its history stays

    await rebuild_rollups(sessions, since=old - timedelta(hours=1), until=T0 - timedelta(days=1))
    stored = await stored_rollups(sessions)
    assert [key[0] for key in stored["minutes"]] == [epoch_minute(T0)] * 2
    assert {key[0] for key in stored["hours"]} == {key[0] for key in stored["bins"]} == {epoch_hour(T0)}


async def test_rollups_are_built_once_for_a_trail_written_before_them(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await record_job_executions(sessions, random_attempts(50, T0, SPAN, seed=7))
    async with sessions.begin() as session:
        await session.execute(delete(WorkerJobMinute))
        await session.execute(delete(WorkerJobHour))
        await session.execute(delete(WorkerJobHourBin))

    report = await ensure_rollups(sessions)

    assert report is not None and report.rows == 50
    await _assert_rollups_match_rows(sessions)
    assert await ensure_rollups(sessions) is None  # there now: nothing to do
