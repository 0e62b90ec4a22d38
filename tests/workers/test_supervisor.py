"""The supervisor with real worker processes: parallel capacity, health, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from datetime import UTC, datetime
from typing import Any

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import get_job_history
from quickdapp.queue.inspection import WorkerProcessInfo
from quickdapp.workers.heartbeat import HEARTBEAT_TTL
from tests.helpers.processes import StartQuickdapp, alive, run_quickdapp
from tests.helpers.waiting import eventually
from tests.helpers.workers import idle_on_redis, live_processes


async def _completed_rows(
    app: ServerApp, job_ids: list[str], timeout: float
) -> dict[str, list[dict[str, Any]]]:
    """Wait until every job has a completed audit row; returns the rows per job id."""

    async def probe() -> dict[str, list[dict[str, Any]]] | None:
        page = await get_job_history(app.sessions, limit=1000)
        rows: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(page.items, key=lambda row: row.attempt):
            rows.setdefault(row.job_id, []).append(
                {"status": row.status, "attempt": row.attempt, "result": row.result}
            )
        done = all(any(r["status"] == "completed" for r in rows.get(j, [])) for j in job_ids)
        return rows if done else None

    return await eventually(probe, timeout, f"{len(job_ids)} completed jobs")


async def test_two_processes_of_five_run_ten_jobs_in_the_time_of_one(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    start_quickdapp("workers", worker_count=2, worker_queue_concurrency=5)
    await live_processes(app.queue_manager, 2)
    await idle_on_redis(app.redis, 2)

    ids = [await app.queue_manager.submit_job("pidSleep", {"ms": 2000}) for _ in range(10)]
    rows = await _completed_rows(app, ids, timeout=30)

    jobs = [await app.queue_manager.queue.getJob(job_id) for job_id in ids]
    span_ms = max(j.finishedOn for j in jobs) - min(j.processedOn for j in jobs)
    # One job's time (2 s) plus hand-out and audit overhead, not two rounds (4 s).
    assert span_ms < 3_400, f"10 jobs took {span_ms} ms"
    pids = {rows[j][0]["result"]["pid"] for j in ids}
    assert len(pids) == 2, f"jobs ran in processes {pids}"
    assert all(len(rows[j]) == 1 for j in ids)


async def test_health_lists_the_live_worker_processes_and_their_jobs(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    began = datetime.now(UTC)
    # The jobs must still run when the `quickdapp health` process, started later, reads the
    # heartbeats: on a busy machine its start alone can take seconds. They are ended 1 s into
    # the teardown.
    supervisor = start_quickdapp(
        "workers", worker_count=2, worker_queue_concurrency=2, worker_shutdown_timeout=1
    )
    processes = await live_processes(app.queue_manager, 2)
    assert all(p.started_at >= began.replace(microsecond=0) for p in processes)
    assert all(p.concurrency == 2 and p.jobs_in_progress == 0 for p in processes)
    assert all(alive(p.pid) and p.pid != supervisor.pid for p in processes)

    ids = [await app.queue_manager.submit_job("sleep", {"ms": 120_000}) for _ in range(3)]

    async def busy() -> list[WorkerProcessInfo] | None:
        processes = (await app.queue_manager.get_health()).processes
        running = sorted(job_id for p in processes for job_id in p.job_ids)
        return processes if running == sorted(ids) else None

    processes = await eventually(busy, 15, "the 3 jobs in the heartbeats")
    assert sum(p.jobs_in_progress for p in processes) == 3

    # The CLI shows the same, as JSON.
    output = await asyncio.to_thread(run_quickdapp, app.settings, "health")
    assert output.returncode == 0, output.stderr
    report = json.loads(output.stdout)
    assert sorted(p["pid"] for p in report["processes"]) == sorted(p.pid for p in processes)
    assert sum(p["jobs_in_progress"] for p in report["processes"]) == 3
    assert {"started_at", "job_ids", "host"} <= set(report["processes"][0])


async def test_sigterm_lets_active_jobs_finish_and_exits_0_without_orphans(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    supervisor = start_quickdapp(
        "workers", worker_count=2, worker_queue_concurrency=2, worker_shutdown_timeout=15
    )
    processes = await live_processes(app.queue_manager, 2)
    ids = [await app.queue_manager.submit_job("sleep", {"ms": 2500}) for _ in range(4)]

    async def all_active() -> bool:
        return int((await app.queue_manager.queue.getJobCounts("active"))["active"]) == 4

    await eventually(all_active, 15, "4 active jobs")
    began = time.monotonic()
    supervisor.terminate()
    code = await supervisor.exited(15)
    elapsed = time.monotonic() - began

    assert code == 0, supervisor.log()
    assert elapsed < 15
    rows = await _completed_rows(app, ids, timeout=1)
    assert all([r["status"] for r in rows[j]] == ["completed"] for j in ids)
    assert not [p.pid for p in processes if alive(p.pid)], "worker processes outlived the supervisor"
    assert (await app.queue_manager.get_health()).processes == []  # records removed at exit
    assert "restart" not in supervisor.log()


async def test_jobs_longer_than_the_shutdown_timeout_are_ended_and_run_again_later(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    fast_stall = {"worker_queue_lock_duration": 1500, "worker_queue_stalled_interval": 1000}
    supervisor = start_quickdapp("workers", worker_count=1, worker_shutdown_timeout=1, **fast_stall)
    (process,) = await live_processes(app.queue_manager, 1)
    job_id = await app.queue_manager.submit_job("sleep", {"ms": 4000})

    async def active() -> bool:
        return int((await app.queue_manager.queue.getJobCounts("active"))["active"]) == 1

    await eventually(active, 15, "the job to start")
    supervisor.terminate()
    code = await supervisor.exited(10)
    assert code == 1, "a shutdown that had to end a job is not clean"
    assert not alive(process.pid)
    assert "still running after 1s" in supervisor.log()

    # The abandoned job keeps its place: the next supervisor runs it again.
    start_quickdapp("workers", worker_count=1, **fast_stall)
    rows = await _completed_rows(app, [job_id], timeout=30)
    assert [r["status"] for r in rows[job_id]] == ["failed", "completed"]


async def test_a_killed_worker_process_is_restarted_with_a_log_line(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    supervisor = start_quickdapp("workers", worker_count=2)
    first = await live_processes(app.queue_manager, 2)
    victim = first[0].pid
    os.kill(victim, signal.SIGKILL)
    replacement = await live_processes(app.queue_manager, 1, exclude={p.pid for p in first})
    assert replacement[0].pid not in {p.pid for p in first}
    assert f"worker process {victim} (slot" in supervisor.log()
    assert "was killed by signal SIGKILL" in supervisor.log()
    assert "restart 1 now" in supervisor.log()  # it was serving: replaced at once

    async def victim_gone() -> bool:
        return victim not in {p.pid for p in (await app.queue_manager.get_health()).processes}

    # A dead process's heartbeat expires: health lists live processes only.
    await eventually(victim_gone, HEARTBEAT_TTL + 3, "the killed process to leave health")


async def test_a_second_signal_kills_the_worker_processes_at_once(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    supervisor = start_quickdapp("workers", worker_count=1, worker_shutdown_timeout=60)
    (process,) = await live_processes(app.queue_manager, 1)
    await app.queue_manager.submit_job("sleep", {"ms": 30_000})

    async def busy() -> bool:
        return int((await app.queue_manager.queue.getJobCounts("active"))["active"]) == 1

    await eventually(busy, 15, "the job to start")
    supervisor.terminate()

    async def first_signal_handled() -> bool:
        return "SIGTERM received: stopping the worker processes" in supervisor.log()

    await eventually(first_signal_handled, 15, "the supervisor to take the first signal")
    began = time.monotonic()
    supervisor.send_signal(signal.SIGINT)
    code = await supervisor.exited(10)

    assert time.monotonic() - began < 5
    assert code == 1, "killing the workers is not a clean shutdown"
    assert not alive(process.pid)
    assert f"killing worker process {process.pid}" in supervisor.log()
