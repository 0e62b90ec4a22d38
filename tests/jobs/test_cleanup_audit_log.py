"""cleanupAuditLog: exactly the rows past retention, in batches, never those of unfinished jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from quickdapp.app.server_app import ServerApp
from quickdapp.attempts import JobExecution
from quickdapp.audit.cleanup import delete_job_history_before
from quickdapp.audit.store import record_job_execution
from quickdapp.db.schema import WorkerJob
from tests.conftest import StartWorker
from tests.helpers.waiting import eventually


async def add_row(app: ServerApp, job_id: str, created_at: datetime, attempt: int = 1) -> None:
    execution = JobExecution(job_id, attempt, "echo", None, {}, "failed", created_at, created_at)
    await record_job_execution(app.sessions, execution)


async def remaining(app: ServerApp) -> list[str]:
    async with app.sessions() as session:
        return sorted(await session.scalars(select(WorkerJob.job_id)))


async def test_deletes_rows_created_before_the_cutoff_and_not_at_it(app: ServerApp) -> None:
    cutoff = datetime(2026, 1, 31, 3, 0, tzinfo=UTC)
    await add_row(app, "long-ago", cutoff - timedelta(days=400))
    await add_row(app, "just-outside", cutoff - timedelta(microseconds=1))
    await add_row(app, "at-cutoff", cutoff)
    await add_row(app, "just-inside", cutoff + timedelta(microseconds=1))

    deleted = await delete_job_history_before(app.sessions, cutoff)

    assert deleted == 2
    assert await remaining(app) == ["at-cutoff", "just-inside"]


async def test_deletes_in_batches_and_reports_the_count(app: ServerApp) -> None:
    now = datetime.now(UTC)
    for index in range(23):
        await add_row(app, f"old-{index:02}", now - timedelta(days=40, minutes=index))
    await add_row(app, "new-1", now)
    await add_row(app, "new-2", now - timedelta(days=1))
    batches: list[int] = []

    async def keep(job_ids: set[str]) -> set[str]:
        batches.append(len(job_ids))
        return set()

    deleted = await delete_job_history_before(
        app.sessions, now - timedelta(days=30), batch_size=5, keep=keep
    )

    assert deleted == 23
    assert batches == [5, 5, 5, 5, 3]
    assert await remaining(app) == ["new-1", "new-2"]


async def test_rows_a_batch_keeps_are_not_read_again(app: ServerApp) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    for index in range(7):
        await add_row(app, f"keep-{index}" if index % 2 else f"drop-{index}", old)
    seen: list[str] = []

    async def keep(job_ids: set[str]) -> set[str]:
        seen.extend(job_ids)
        return {job_id for job_id in job_ids if job_id.startswith("keep-")}

    deleted = await delete_job_history_before(
        app.sessions, old + timedelta(days=1), batch_size=2, keep=keep
    )

    assert deleted == 4
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 7
    assert await remaining(app) == ["keep-1", "keep-3", "keep-5"]


async def test_the_job_deletes_past_retention_in_batches_and_reports_the_count(
    app: ServerApp, start_worker: StartWorker
) -> None:
    now = datetime.now(UTC)
    retention = timedelta(days=30)
    for index in range(5):
        await add_row(app, f"outside-{index}", now - retention - timedelta(seconds=1 + index))
    await add_row(app, "inside-1", now - retention + timedelta(seconds=60))
    await add_row(app, "inside-2", now - timedelta(days=1))
    await start_worker()

    job_id = await app.queue_manager.submit_job("cleanupAuditLog", {"retentionDays": 30, "batchSize": 2})
    outcome = await app.queue_manager.wait_until_finished(job_id, timeout=15)

    assert outcome["state"] == "completed"
    assert outcome["returnvalue"]["deleted"] == 5
    cutoff = datetime.fromisoformat(outcome["returnvalue"]["cutoff"])
    assert now - retention <= cutoff < now - retention + timedelta(seconds=30)
    assert await remaining(app) == sorted(["inside-1", "inside-2", job_id])


async def test_never_deletes_rows_of_jobs_still_running_or_waiting_to_retry(
    app: ServerApp, start_worker: StartWorker
) -> None:
    manager = app.queue_manager
    old = datetime.now(UTC) - timedelta(days=40)
    await start_worker(worker_queue_concurrency=2)
    # Finished long ago, still in Redis as completed: its row may go.
    done = await manager.submit_job("echo", {}, job_id="done-job")
    await manager.wait_until_finished(done, timeout=10)
    async with app.sessions.begin() as session:
        await session.execute(update(WorkerJob).where(WorkerJob.job_id == done).values(created_at=old))
    # Its first attempt failed long ago; its second attempt is running now.
    running = await manager.submit_job("sleep", {"ms": 4000}, job_id="running-job")
    await add_row(app, running, old)

    async def is_active() -> bool:
        return await manager.queue.getJobState(running) == "active"

    await eventually(is_active, 10, "the sleep job to start")
    # Its first attempt failed long ago; it waits for its retry.
    retrying = await manager.submit_job("echo", {}, job_id="retrying-job", delay=60_000)
    await add_row(app, retrying, old)
    # Gone from Redis altogether.
    await add_row(app, "gone-job", old)

    job_id = await manager.submit_job("cleanupAuditLog", {"retentionDays": 1})
    outcome = await manager.wait_until_finished(job_id, timeout=15)

    assert outcome["returnvalue"]["deleted"] == 2
    assert await remaining(app) == sorted([job_id, running, retrying])
