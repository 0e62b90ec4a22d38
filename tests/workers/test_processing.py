"""The `jobs` queue against a real Redis: processing, priorities, delays, concurrency."""

from __future__ import annotations

import asyncio
import time

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import get_job_history
from tests.conftest import StartWorker


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

    page = await get_job_history(app.sessions, limit=10)
    order = [row.type for row in sorted(page.items, key=lambda row: row.started_at)]
    assert order == ["watchChain"] * 2 + ["deployMulticall3"] * 2 + ["cleanupAuditLog"] * 2


async def test_delayed_jobs_start_within_150_ms_of_their_due_time(
    app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker(worker_queue_concurrency=5)
    await asyncio.sleep(0.3)  # the worker is idle and blocking on Redis when the jobs arrive
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

    rows = (await get_job_history(app.sessions, limit=100)).items
    events = sorted([(r.started_at, 1) for r in rows] + [(r.completed_at, -1) for r in rows])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == concurrency
    # Two rounds of 0.6 s, not eight.
    assert elapsed < 2 * 0.6 + 1.5, f"{len(ids)} jobs took {elapsed:.2f}s"
