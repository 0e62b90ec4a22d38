"""A worker process (`quickdapp worker`): processing, priorities, delays, concurrency, SIGTERM."""

from __future__ import annotations

import time

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import get_job_history
from tests.helpers.processes import StartQuickdapp
from tests.helpers.waiting import audit_stored, eventually
from tests.helpers.workers import StartWorker, idle_on_redis


async def test_submitted_job_is_processed_and_returns_its_result(
    app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    job_id = await app.queue_manager.submit_job("echo", {"value": {"answer": 42}})

    outcome = await app.queue_manager.wait_until_finished(job_id, timeout=10)

    assert outcome["state"] == "completed"
    assert outcome["returnvalue"] == {"answer": 42}


async def test_priorities_run_watch_chain_then_deploy_then_cleanup(
    app: ServerApp, start_worker: StartWorker
) -> None:
    manager = app.queue_manager
    # Submitted lowest priority first, while no worker runs, so all of them wait together.
    ids = []
    for _ in range(2):
        ids.append(await manager.submit_job("cleanupAuditLog", {"retentionDays": 30}))
        ids.append(await manager.submit_job("deployMulticall3", {}))
        ids.append(await manager.submit_job("watchChain", {}))
    await start_worker(worker_queue_concurrency=1)
    for job_id in ids:
        await manager.wait_until_finished(job_id, timeout=10)
    await audit_stored(app.redis)

    page = await get_job_history(app.sessions, limit=10)
    order = [row.type for row in sorted(page.items, key=lambda row: row.started_at)]
    assert order == ["watchChain"] * 2 + ["deployMulticall3"] * 2 + ["cleanupAuditLog"] * 2


async def test_delayed_jobs_start_within_150_ms_of_their_due_time(
    app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker(worker_queue_concurrency=5)
    await idle_on_redis(app.redis, 1)  # the jobs arrive while the worker waits for them
    delays = [300, 700, 1200, 1900]
    ids = [await app.queue_manager.submit_job("echo", {}, delay=d) for d in delays]
    for job_id in ids:
        await app.queue_manager.wait_until_finished(job_id, timeout=10)

    for job_id, delay in zip(ids, delays, strict=True):
        job = await app.queue_manager.queue.getJob(job_id)
        lateness = job.processedOn - (job.timestamp + delay)
        assert 0 <= lateness <= 150, f"delay {delay} ms started {lateness} ms late"


async def test_concurrency_n_runs_n_jobs_at_once(app: ServerApp, start_worker: StartWorker) -> None:
    concurrency = 4
    ids = [await app.queue_manager.submit_job("sleep", {"ms": 600}) for _ in range(concurrency * 2)]
    began = time.monotonic()
    await start_worker(worker_queue_concurrency=concurrency)
    for job_id in ids:
        await app.queue_manager.wait_until_finished(job_id, timeout=20)
    elapsed = time.monotonic() - began
    await audit_stored(app.redis)

    rows = (await get_job_history(app.sessions, limit=100)).items
    events = sorted([(r.started_at, 1) for r in rows] + [(r.completed_at, -1) for r in rows])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == concurrency
    # Two rounds of 0.6 s, not eight.
    assert elapsed < 2 * 0.6 + 1.5, f"{len(ids)} jobs took {elapsed:.2f}s"


async def test_sigterm_finishes_the_active_job_and_leaves_the_rest_waiting(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    worker = start_quickdapp("worker")
    manager = app.queue_manager
    running = await manager.submit_job("sleep", {"ms": 1500})
    waiting = await manager.submit_job("sleep", {"ms": 10})

    async def active() -> bool:
        return await manager.inspect.state(running) == "active"

    await eventually(active, 15, "the first job to be active")
    worker.terminate()
    code = await worker.exited(30)

    assert code == 0, worker.log()
    assert await manager.queue.getJobState(running) == "completed"
    assert await manager.queue.getJobState(waiting) == "prioritized"
    await audit_stored(app.redis)
    rows = (await get_job_history(app.sessions)).items
    assert [(r.job_id, r.status) for r in rows] == [(running, "completed")]
    assert "SIGTERM received: finishing active jobs" in worker.log()
