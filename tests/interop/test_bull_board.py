"""Bull Board's JSON API on this system's Redis: it shows our jobs with the right states and
counts and our schedulers, and its retry, pause and resume take effect on our workers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from quickdapp.app.server_app import ServerApp
from quickdapp.keys import JobState
from tests.helpers.waiting import eventually
from tests.helpers.workers import StartWorker
from tests.interop.audit import all_rows

# The states both dashboards count (Bull Board adds waiting-children, which we never use).
STATES: tuple[JobState, ...] = ("waiting", "prioritized", "active", "delayed", "completed", "failed")
JOBS = "/api/queues/jobs"


async def board_queue(board: httpx.AsyncClient, status: str = "latest") -> dict[str, Any]:
    """The `jobs` queue as Bull Board's page reads it: counts, paused flag, the jobs of `status`."""
    response = await board.get(
        "/api/queues", params={"activeQueue": "jobs", "status": status, "page": 1, "jobsPerPage": 50}
    )
    response.raise_for_status()
    [queue] = response.json()["queues"]
    assert queue["name"] == "jobs"
    result: dict[str, Any] = queue
    return result


async def test_bull_board_shows_our_jobs_with_their_states_and_counts(
    app: ServerApp, start_worker: StartWorker, bull_board: httpx.AsyncClient
) -> None:
    manager = app.queue_manager
    first = await manager.submit_job("echo", {"value": 1}, 4)
    second = await manager.submit_job("echo", {"value": 2})
    later = await manager.submit_job("echo", {"value": 3}, delay=60_000)

    pending = await board_queue(bull_board, "prioritized")
    assert {s: pending["counts"][s] for s in STATES} == {
        **dict.fromkeys(STATES, 0),
        "prioritized": 2,
        "delayed": 1,
    }
    assert {job["id"]: job["data"] for job in pending["jobs"]} == {
        first: {"userId": 4, "data": {"value": 1}},
        second: {"userId": None, "data": {"value": 2}},
    }
    assert {job["name"] for job in pending["jobs"]} == {"echo"}
    assert {job["priority"] for job in pending["jobs"]} == {20}
    delayed = await board_queue(bull_board, "delayed")
    assert [job["id"] for job in delayed["jobs"]] == [later]

    await start_worker()
    failing = await manager.submit_job("flaky", {"failures": 1}, attempts=1)
    for job_id in (first, second, failing):
        await manager.wait_until_finished(job_id, 10)

    done = await board_queue(bull_board, "failed")
    health = await manager.get_health()
    assert {s: done["counts"][s] for s in STATES} == {s: health.counts[s] for s in STATES}
    assert (done["counts"]["completed"], done["counts"]["failed"], done["counts"]["delayed"]) == (
        2,
        1,
        1,
    )
    [failed] = done["jobs"]
    assert failed["id"] == failing and failed["isFailed"] is True
    assert failed["failedReason"] == "flaky failure (attempt 1)"
    assert failed["attempts"] == 1 and failed["processedOn"] is not None
    completed = await board_queue(bull_board, "completed")
    assert {job["id"]: job["returnValue"] for job in completed["jobs"]} == {first: 1, second: 2}


async def test_bull_board_lists_our_cron_and_every_schedulers(
    app: ServerApp, bull_board: httpx.AsyncClient
) -> None:
    manager = app.queue_manager
    await manager.schedule_cron_job("cleanupAuditLog", "0 3 * * *", {"retentionDays": 9}, key="nightly")
    await manager.schedule_every_job("echo", "30s", {"value": "tick"}, key="ticker")

    response = await bull_board.get("/api/job-schedulers")
    response.raise_for_status()
    schedulers = {s["id"]: s for s in response.json()["schedulers"]}

    assert schedulers["nightly"]["pattern"] == "0 3 * * *"
    assert schedulers["nightly"]["name"] == "cleanupAuditLog"
    assert schedulers["ticker"]["every"] == 30_000 and "pattern" not in schedulers["ticker"]
    assert schedulers["ticker"]["template"]["data"] == {"userId": None, "data": {"value": "tick"}}
    ours = {job.key: job for job in await manager.list_cron_jobs()}
    next_run = ours["ticker"].next_run
    assert next_run is not None
    assert schedulers["ticker"]["nextRunJobId"] == f"repeat:ticker:{round(next_run.timestamp() * 1000)}"


async def test_a_retry_from_bull_board_runs_the_job_again_on_our_worker(
    app: ServerApp, start_worker: StartWorker, bull_board: httpx.AsyncClient
) -> None:
    manager = app.queue_manager
    await start_worker()
    job_id = await manager.submit_job("flaky", {"failures": 1}, attempts=1)
    assert (await manager.wait_until_finished(job_id, 10))["state"] == "failed"

    response = await bull_board.put(f"{JOBS}/{job_id}/retry")

    assert response.status_code == 204
    outcome = await manager.wait_until_finished(job_id, 10)
    assert outcome["state"] == "completed", outcome

    async def both_rows() -> list[Any] | None:
        rows = await all_rows(app)
        return rows if len(rows) == 2 else None

    rows = sorted(
        await eventually(both_rows, 10, "the retried attempt's audit row"), key=lambda r: r.attempt
    )
    assert [(row.attempt, row.status) for row in rows] == [(1, "failed"), (2, "completed")]
    assert rows[1].result == {"succeeded_on_attempt": 2}


async def test_pause_and_resume_from_bull_board_take_effect_on_our_worker(
    app: ServerApp, start_worker: StartWorker, bull_board: httpx.AsyncClient
) -> None:
    manager = app.queue_manager
    await start_worker()

    assert (await bull_board.put(f"{JOBS}/pause")).status_code == 200
    assert (await manager.get_health()).paused is True
    assert (await board_queue(bull_board))["isPaused"] is True
    job_id = await manager.submit_job("echo", {"value": "held"})
    # The worker takes a job within milliseconds when the queue runs; it must not take this one.
    await _held_back(app, job_id, seconds=1.0)
    assert await all_rows(app) == []

    assert (await bull_board.put(f"{JOBS}/resume")).status_code == 200

    assert (await manager.get_health()).paused is False
    outcome = await manager.wait_until_finished(job_id, 10)
    assert (outcome["state"], outcome["returnvalue"]) == ("completed", "held")


async def _held_back(app: ServerApp, job_id: str, seconds: float) -> None:
    """Fail if `job_id` starts within `seconds` (there is no event for "did not happen")."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        state = await app.queue_manager.queue.getJobState(job_id)
        assert state in ("waiting", "prioritized", "paused"), f"the paused queue's job is {state}"
        await asyncio.sleep(0.05)
