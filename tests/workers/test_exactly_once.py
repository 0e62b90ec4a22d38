"""20,000 jobs through the real supervisor at 2 processes x 50: each runs once and has exactly
one audit row (no duplicate, no gap), with nothing in the way of the fast path."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from quickdapp.app.server_app import ServerApp
from quickdapp.db.schema import WorkerJob
from tests.helpers.jobs import recorded_runs
from tests.helpers.processes import StartQuickdapp
from tests.helpers.waiting import audit_stored, eventually
from tests.helpers.workers import live_processes

JOBS = 20_000


@pytest.mark.timeout(300)
async def test_twenty_thousand_jobs_at_two_by_fifty_run_once_with_one_audit_row_each(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    manager = app.queue_manager
    start_quickdapp("workers", worker_count=2, worker_queue_concurrency=50, log_level="WARNING")
    await live_processes(manager, 2)
    ids: list[str] = []
    for start in range(0, JOBS, 500):
        batch = range(start, min(start + 500, JOBS))
        ids += await asyncio.gather(*(manager.submit_job("recordRun", {}) for _ in batch))

    async def all_ran_and_none_left() -> bool:
        counts = await manager.inspect.counts()
        pending = sum(counts[state] for state in ("waiting", "prioritized", "active", "delayed"))
        return pending == 0 and len(await recorded_runs(app.redis)) >= JOBS

    # Completed jobs are trimmed to the last 100 in Redis: the runs and the rows are the record.
    await eventually(all_ran_and_none_left, 240, f"{JOBS} jobs to run", interval=0.5)
    await audit_stored(app.redis, timeout=60)

    runs = [run["job_id"] for run in await recorded_runs(app.redis)]
    assert len(runs) == JOBS and set(runs) == set(ids), "every job ran, and once"
    async with app.sessions() as session:
        rows = (
            await session.execute(select(WorkerJob.job_id, WorkerJob.attempt, WorkerJob.status))
        ).all()
        distinct = await session.scalar(select(func.count(func.distinct(WorkerJob.job_id))))
    assert len(rows) == JOBS and distinct == JOBS, "one audit row per job"
    assert {row.job_id for row in rows} == set(ids)
    assert all(row.attempt == 1 and row.status == "completed" for row in rows)
    assert (await manager.inspect.counts())["failed"] == 0
