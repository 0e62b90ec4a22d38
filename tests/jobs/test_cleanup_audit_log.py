"""cleanupAuditLog: the rows past retention, in batches, never those of unfinished jobs (the
deletion itself is tested with the audit store, tests/audit/test_store.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.store import record_job_execution
from quickdapp.db.schema import WorkerJob
from tests.helpers.audit import audit_job_ids, execution
from tests.helpers.waiting import audit_stored, eventually
from tests.helpers.workers import StartWorker


async def add_row(app: ServerApp, job_id: str, created_at: datetime) -> None:
    """A failed attempt of `job_id` recorded at `created_at`."""
    await record_job_execution(app.sessions, execution(job_id, status="failed", at=created_at))


async def remaining(app: ServerApp) -> list[str]:
    return await audit_job_ids(app.sessions)


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
    await audit_stored(app.redis)
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
    await audit_stored(app.redis)
    async with app.sessions.begin() as session:
        await session.execute(update(WorkerJob).where(WorkerJob.job_id == done).values(created_at=old))
    # Its first attempt failed long ago; its second attempt is running now.
    running = await manager.submit_job("sleep", {"ms": 4000}, job_id="running-job")
    await add_row(app, running, old)

    async def is_active() -> bool:
        return await manager.inspect.state(running) == "active"

    await eventually(is_active, 10, "the sleep job to start")
    # Its first attempt failed long ago; it waits for its retry.
    retrying = await manager.submit_job("echo", {}, job_id="retrying-job", delay=60_000)
    await add_row(app, retrying, old)
    # Gone from Redis altogether.
    await add_row(app, "gone-job", old)

    job_id = await manager.submit_job("cleanupAuditLog", {"retentionDays": 1})
    outcome = await manager.wait_until_finished(job_id, timeout=15)
    await audit_stored(app.redis)  # the cleanup job's own row

    assert outcome["returnvalue"]["deleted"] == 2
    assert await remaining(app) == sorted([job_id, running, retrying])
