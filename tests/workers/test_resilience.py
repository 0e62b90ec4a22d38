"""Worker processes that die, freeze, block or lose Redis: no job is lost, none runs twice."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from datetime import datetime

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import get_job_history
from quickdapp.audit.stalled import STALLED_REASON
from quickdapp.devtools.redis_manager import RedisManager
from quickdapp.queue.inspection import WorkerProcessInfo
from tests.helpers.processes import StartQuickdapp
from tests.helpers.waiting import audit_stored, eventually
from tests.helpers.workers import live_processes

# Locks that lapse fast, so a dead process's jobs are found again within seconds.
FAST_STALLS = {
    "worker_queue_lock_duration": 1500,
    "worker_queue_stalled_interval": 1000,
    "worker_queue_max_stalled_count": 1,
}


Row = tuple[int, str, str | None]
"""(attempt, status, error) of an audit row."""


async def _rows(app: ServerApp) -> dict[str, list[Row]]:
    """(attempt, status, error) of every audit row, per job id, in attempt order."""
    page = await get_job_history(app.sessions, limit=1000)
    rows: dict[str, list[Row]] = {}
    for row in sorted(page.items, key=lambda row: row.attempt):
        rows.setdefault(row.job_id, []).append((row.attempt, row.status, row.error))
    return rows


async def _all_completed(app: ServerApp, job_ids: list[str], timeout: float) -> dict[str, list[Row]]:
    async def probe() -> dict[str, list[Row]] | None:
        rows = await _rows(app)
        done = all(any(status == "completed" for _, status, _ in rows.get(j, [])) for j in job_ids)
        return rows if done else None

    return await eventually(probe, timeout, f"{len(job_ids)} jobs to complete", interval=0.25)


def _completed_once(rows: dict[str, list[Row]], job_ids: list[str]) -> None:
    for job_id in job_ids:
        completed = [r for r in rows[job_id] if r[1] == "completed"]
        assert len(completed) == 1, f"job {job_id} completed {len(completed)} times: {rows[job_id]}"


async def test_sigkilled_worker_is_replaced_and_its_jobs_complete_exactly_once(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    supervisor = start_quickdapp("workers", worker_count=2, worker_queue_concurrency=3, **FAST_STALLS)
    first = await live_processes(app.queue_manager, 2)
    # Long enough that the jobs a heartbeat (every 2 s) shows are still running when the kill
    # comes, however slowly that heartbeat is written and read on a busy machine.
    ids = [await app.queue_manager.submit_job("sleep", {"ms": 6000}) for _ in range(10)]

    async def victim_busy() -> WorkerProcessInfo | None:
        for process in (await app.queue_manager.get_health()).processes:
            states = [await app.queue_manager.inspect.state(job_id) for job_id in process.job_ids]
            if process.jobs_in_progress == 3 and states == ["active"] * 3:
                return process
        return None

    victim = await eventually(victim_busy, 20, "a worker process holding 3 running jobs")
    os.kill(victim.pid, signal.SIGKILL)

    rows = await _all_completed(app, ids, timeout=60)
    _completed_once(rows, ids)
    stalled = {job_id for job_id, attempts in rows.items() if attempts[0][1] == "failed"}
    assert stalled >= set(victim.job_ids), "each job of the killed process has its stalled row"
    for job_id in stalled:
        assert [status for _, status, _ in rows[job_id]] == ["failed", "completed"]
        assert "stalled" in (rows[job_id][0][2] or "")
    await live_processes(app.queue_manager, 1, exclude={p.pid for p in first})
    assert f"worker process {victim.pid} (slot" in supervisor.log()
    assert "was killed by signal SIGKILL" in supervisor.log()


async def test_a_job_that_always_crashes_its_process_fails_as_stalled_and_others_go_on(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    supervisor = start_quickdapp("workers", worker_count=2, worker_queue_concurrency=1, **FAST_STALLS)
    await live_processes(app.queue_manager, 2)
    crash_id = await app.queue_manager.submit_job("crash", {"after_ms": 200})
    ids = [await app.queue_manager.submit_job("sleep", {"ms": 300}) for _ in range(6)]

    outcome = await app.queue_manager.wait_until_finished(crash_id, timeout=60)
    assert outcome["state"] == "failed"
    assert outcome["failedReason"] == STALLED_REASON

    rows = await _all_completed(app, ids, timeout=30)
    _completed_once(rows, ids)

    async def three_rows() -> list[Row] | None:
        crash_rows = (await _rows(app)).get(crash_id, [])
        return crash_rows if len(crash_rows) >= 3 else None

    crash_rows = await eventually(three_rows, 10, "3 audit rows of the crashing job")
    assert [status for _, status, _ in crash_rows] == ["failed"] * 3, crash_rows
    assert [attempt for attempt, _, _ in crash_rows] == [1, 2, 3]
    assert "stall 1 of at most 1" in (crash_rows[0][2] or "")
    assert "stall 2 of at most 1" in (crash_rows[1][2] or "")
    assert STALLED_REASON in (crash_rows[2][2] or "")
    assert len(re.findall(r"was killed by signal SIGKILL", supervisor.log())) == 2


async def test_a_process_that_dies_at_start_up_is_restarted_with_growing_back_off(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    supervisor = start_quickdapp("workers", worker_count=1, job_modules="tests.helpers.no_such_module")
    deaths = re.compile(
        r"^(\S+ \S+) .*exited with code 1 after [\d.]+s \(before it was ready\); "
        r"restart (\d+) in ([\d.]+)s$",
        re.M,
    )
    starts = re.compile(r"^(\S+ \S+) .*worker process \d+ started", re.M)

    async def three_restarts() -> bool:
        return len(starts.findall(supervisor.log())) >= 4

    await eventually(three_restarts, 90, "3 restarts")
    log = supervisor.log()
    assert "No module named 'tests.helpers.no_such_module'" in log
    died = [(_when(at), int(n), float(delay)) for at, n, delay in deaths.findall(log)][:3]
    assert [(n, delay) for _, n, delay in died] == [(1, 1.0), (2, 2.0), (3, 4.0)]
    restarted = [_when(at) for at in starts.findall(log)][1:4]
    for (death, _, delay), start in zip(died, restarted, strict=True):
        assert start - death >= delay - 0.05, f"restarted {start - death:.2f}s after, not {delay}s"


def _when(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


LOCK_MS = 2000  # renewed about every second: room for a busy machine


async def _job_three_times_the_lock(
    app: ServerApp, start_quickdapp: StartQuickdapp, job_type: str
) -> str:
    """Two worker processes with a short lock, and a job of `job_type` sleeping 3 locks long."""
    start_quickdapp(
        "workers",
        worker_count=2,
        worker_queue_lock_duration=LOCK_MS,
        worker_queue_stalled_interval=1000,
    )
    await live_processes(app.queue_manager, 2)
    return await app.queue_manager.submit_job(job_type, {"ms": 3 * LOCK_MS})


async def test_a_blocking_handler_three_times_the_lock_completes_once(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    job_id = await _job_three_times_the_lock(app, start_quickdapp, "blockingSleep")

    outcome = await app.queue_manager.wait_until_finished(job_id, timeout=30)
    await asyncio.sleep(2.5)  # a second run, had there been one, would show by now

    assert outcome["state"] == "completed"
    job = await app.queue_manager.queue.getJob(job_id)
    assert (job.attemptsStarted, job.stalledCounter) == (1, 0)
    await audit_stored(app.redis)
    assert [(a, s) for a, s, _ in (await _rows(app))[job_id]] == [(1, "completed")]


async def test_control_the_same_work_blocking_the_event_loop_runs_again(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    """Without the thread, lock renewal stops and the job is taken for stalled and run again."""
    job_id = await _job_three_times_the_lock(app, start_quickdapp, "loopBlockingSleep")

    async def started_twice() -> bool:
        job = await app.queue_manager.queue.getJob(job_id)
        return job is not None and job.attemptsStarted >= 2

    await eventually(started_twice, 20, "the job to be started again")
    rows = await eventually(lambda: _stalled_rows(app, job_id), 20, "a stalled row")
    assert "stalled" in (rows[0][2] or "")


async def _stalled_rows(app: ServerApp, job_id: str) -> list[Row] | None:
    return [r for r in (await _rows(app)).get(job_id, []) if "stalled" in (r[2] or "")] or None


async def test_workers_ride_out_a_redis_restart_and_run_the_waiting_jobs(
    app: ServerApp, start_quickdapp: StartQuickdapp, redis_manager: RedisManager
) -> None:
    supervisor = start_quickdapp("workers", worker_count=2, worker_queue_concurrency=2)
    processes = await live_processes(app.queue_manager, 2)
    warm = [await app.queue_manager.submit_job("echo", {"value": n}) for n in range(4)]
    await _all_completed(app, warm, timeout=20)

    # Due while Redis is away: they wait in Redis's append-only file.
    ids = [await app.queue_manager.submit_job("sleep", {"ms": 200}, delay=1500) for _ in range(6)]
    try:
        redis_manager.stop()
        began = time.monotonic()
        await asyncio.sleep(4)  # time passing is the point: an outage of some seconds
    finally:
        redis_manager.start()
    down_for = time.monotonic() - began

    rows = await _all_completed(app, ids, timeout=45)
    _completed_once(rows, ids)
    log = supervisor.log()
    for process in processes:
        lost = re.findall(rf" {process.pid} \S+: lost the connection to Redis", log)
        back = re.findall(rf" {process.pid} \S+: Redis at \S+ is back after", log)
        assert (len(lost), len(back)) == (1, 1), f"process {process.pid}:\n{log}"
    assert "restart" not in log, "no worker process died of the outage"
    assert log.count("\n") < 200, f"an outage of {down_for:.1f}s took {log.count(chr(10))} log lines"
