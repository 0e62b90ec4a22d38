"""QueueManager: typed submission, priority routing, schedules (lifecycle and runs), health."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import get_job_history
from quickdapp.errors import JobValidationError, UnknownJobTypeError
from quickdapp.queue.cron import CronPatternError
from tests.helpers.jobs import recorded_runs
from tests.helpers.processes import StartQuickdapp
from tests.helpers.queue import pending_counts
from tests.helpers.waiting import eventually
from tests.helpers.workers import StartWorker, idle_on_redis


async def _queue_keys(app: ServerApp) -> list[str]:
    return sorted(str(key) for key in await app.redis.keys("bull:jobs:*"))


@pytest.mark.parametrize(
    ("job_type", "data", "problem"),
    [
        ("cleanupAuditLog", {}, "retentionDays: Field required"),
        (
            "cleanupAuditLog",
            {"retentionDays": 0},
            "retentionDays: Input should be greater than or equal to 1",
        ),
        ("cleanupAuditLog", {"retentionDays": "30"}, "retentionDays: Input should be a valid integer"),
        ("watchChain", {"fromBlock": -1}, "fromBlock: Input should be greater than or equal to 0"),
        ("watchChain", {"fromBlok": 5}, "fromBlok: Extra inputs are not permitted"),
        ("deployMulticall3", {"forceRedeploy": "yes"}, "forceRedeploy: Input should be a valid boolean"),
        ("deployMulticall3", [1, 2], "(data): Input should be a valid dictionary"),
    ],
)
async def test_bad_data_is_refused_naming_the_field_and_nothing_is_enqueued(
    app: ServerApp, job_type: str, data: object, problem: str
) -> None:
    with pytest.raises(JobValidationError) as refused:
        await app.queue_manager.submit_job(job_type, data)

    assert f"invalid data for job type {job_type!r}" in str(refused.value)
    assert problem in str(refused.value)
    assert await _queue_keys(app) == []


async def test_unknown_type_is_refused_listing_the_known_ones(app: ServerApp) -> None:
    with pytest.raises(
        UnknownJobTypeError, match="unknown job type 'mintNft'; known types: .*watchChain"
    ):
        await app.queue_manager.submit_job("mintNft", {})
    assert await _queue_keys(app) == []


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"delay": -5}, r"delay \(ms\) must be an integer in 0\.\.31536000000"),
        ({"attempts": 0}, r"attempts must be an integer in 1\.\.100"),
        ({"priority": 0}, r"priority must be an integer in 1\.\.2097152"),
        ({"job_id": "42"}, "a job id must be .*not a number"),
        ({"job_id": "a:b"}, "without ':'"),
        ({"job_id": "meta"}, "none of .*meta"),
    ],
)
async def test_bad_options_are_refused_and_nothing_is_enqueued(
    app: ServerApp, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        await app.queue_manager.submit_job("cleanupAuditLog", {"retentionDays": 3}, **options)
    assert await _queue_keys(app) == []


async def test_each_type_is_routed_with_its_priority_and_default_options(app: ServerApp) -> None:
    manager = app.queue_manager
    # type: (data submitted, data stored with defaults filled in, priority)
    expected = {
        "watchChain": ({}, {}, 1),
        "deployMulticall3": ({}, {"forceRedeploy": False}, 5),
        "cleanupAuditLog": ({"retentionDays": 7}, {"retentionDays": 7, "batchSize": 5000}, 10),
    }
    for job_type, (data, stored, priority) in expected.items():
        job = await manager.queue.getJob(await manager.submit_job(job_type, data, user_id=12))
        assert job.priority == priority
        assert job.data == {"userId": 12, "data": stored}
        assert job.opts["attempts"] == app.settings.worker_queue_job_attempts
        assert job.opts["backoff"] == {"type": "exponential", "delay": 2000}
        assert job.opts["removeOnComplete"] == {"age": 3600, "count": 100}
        assert job.opts["removeOnFail"] == {"age": 86400, "count": 500}
    counts = await manager.queue.getJobCounts("prioritized", "waiting")
    assert counts == {"prioritized": 3, "waiting": 0}


async def test_a_job_id_is_submitted_once(app: ServerApp) -> None:
    manager = app.queue_manager
    first = await manager.submit_job("deployMulticall3", {}, job_id="deploy-multicall3")
    second = await manager.submit_job("deployMulticall3", {}, job_id="deploy-multicall3")
    assert first == second == "deploy-multicall3"
    assert (await manager.get_health()).counts["prioritized"] == 1


async def test_cron_schedule_add_update_remove(app: ServerApp) -> None:
    manager = app.queue_manager
    added = await manager.schedule_cron_job(
        "cleanupAuditLog", "0 3 * * *", {"retentionDays": 30}, key="cleanup-audit-log"
    )
    assert (added.key, added.type, added.pattern) == (
        "cleanup-audit-log",
        "cleanupAuditLog",
        "0 3 * * *",
    )
    assert added.data == {"retentionDays": 30, "batchSize": 5000}
    assert added.next_run is not None and (added.next_run.hour, added.next_run.minute) == (3, 0)

    updated = await manager.schedule_cron_job(
        "cleanupAuditLog", "*/10 * * * * *", {"retentionDays": 7}, key="cleanup-audit-log"
    )
    assert updated.pattern == "*/10 * * * * *"
    assert updated.data == {"retentionDays": 7, "batchSize": 5000}
    assert [job.key for job in await manager.list_cron_jobs()] == ["cleanup-audit-log"]
    assert (await manager.get_health()).counts["delayed"] == 1  # one pending run, not two

    assert await manager.remove_cron_job("cleanup-audit-log") is True
    assert await manager.remove_cron_job("cleanup-audit-log") is False
    assert await manager.list_cron_jobs() == []


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("* * * *", "has 4 fields"),
        ("* * * * * * *", "has 7 fields"),
        ("61 * * * *", "is not valid"),
        ("*/3 * * * * * ", None),
    ],
)
async def test_cron_patterns_are_checked_before_anything_is_written(
    app: ServerApp, pattern: str, problem: str | None
) -> None:
    manager = app.queue_manager
    if problem is None:
        await manager.schedule_cron_job("watchChain", pattern, {}, key="k")
        assert len(await manager.list_cron_jobs()) == 1
        return
    with pytest.raises(CronPatternError, match=problem):
        await manager.schedule_cron_job("watchChain", pattern, {}, key="k")
    assert await _queue_keys(app) == []


async def test_bad_time_zone_and_bad_data_write_no_schedule(app: ServerApp) -> None:
    manager = app.queue_manager
    with pytest.raises(CronPatternError, match="unknown time zone 'Mars/Olympus'"):
        await manager.schedule_cron_job("watchChain", "* * * * *", {}, key="k", tz="Mars/Olympus")
    with pytest.raises(JobValidationError):
        await manager.schedule_cron_job("cleanupAuditLog", "* * * * *", {"retentionDays": 0}, key="k")
    assert await _queue_keys(app) == []


async def test_health_counts_each_state_without_listing_jobs(app: ServerApp) -> None:
    manager = app.queue_manager
    await manager.submit_job("cleanupAuditLog", {"retentionDays": 1})
    await manager.submit_job("watchChain", {})
    await manager.submit_job("watchChain", {}, delay=60_000)

    health = await manager.get_health()

    assert health.counts == {
        "waiting": 0,
        "prioritized": 2,
        "active": 0,
        "delayed": 1,
        "completed": 0,
        "failed": 0,
        "paused": 0,
    }
    assert health.paused is False
    assert health.workers == 0
    assert "no worker is connected to the queue: jobs will wait" in health.warnings
    assert health.redis.ok and health.redis.maxmemory_policy == "noeviction"
    assert health.redis.version

    await manager.queue.pause()
    assert (await manager.get_health()).paused is True


async def test_wait_until_finished_reports_failure_and_unknown_jobs(
    app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    job_id = await app.queue_manager.submit_job("flaky", {"failures": 5, "message": "boom"}, attempts=1)

    outcome = await app.queue_manager.wait_until_finished(job_id, timeout=10)

    assert outcome["state"] == "failed"
    assert "boom (attempt 1)" in outcome["failedReason"]
    # Asking again after the fact reads the finished job instead of waiting.
    again = await app.queue_manager.wait_until_finished(job_id, timeout=1)
    assert again["state"] == "failed"
    with pytest.raises(LookupError, match="no job 'nope'"):
        await app.queue_manager.wait_until_finished("nope", timeout=1)


async def test_health_counts_workers_not_connections(app: ServerApp, start_worker: StartWorker) -> None:
    await start_worker()
    await start_worker()
    health = await app.queue_manager.get_health()
    assert health.workers == 2
    assert health.warnings == []


async def test_bad_pattern_data_or_key_writes_nothing(app: ServerApp) -> None:
    manager = app.queue_manager
    with pytest.raises(CronPatternError, match="hour field"):
        await manager.schedule_cron_job("echo", "0 25 * * *", {}, "bad")
    with pytest.raises(CronPatternError, match="time zone"):
        await manager.schedule_cron_job("echo", "0 3 * * *", {}, "bad", tz="Nowhere/Else")
    with pytest.raises(JobValidationError, match="retentionDays"):
        await manager.schedule_cron_job("cleanupAuditLog", "0 3 * * *", {"retentionDays": 0}, "bad")
    with pytest.raises(ValueError, match="schedule key"):
        await manager.schedule_cron_job("echo", "0 3 * * *", {}, "a:b")

    assert await manager.list_cron_jobs() == []
    assert await app.redis.keys("bull:jobs:*") == []


async def test_schedule_is_listed_with_type_pattern_data_and_next_run(app: ServerApp) -> None:
    manager = app.queue_manager
    before = datetime.now(UTC)
    await manager.schedule_cron_job("echo", "*/3 * * * * *", {"value": 7}, "every-3s")
    await manager.schedule_cron_job("echo", "0 3 * * *", {}, "nightly", tz="Europe/Paris")

    by_key = {job.key: job for job in await manager.list_cron_jobs()}

    assert set(by_key) == {"every-3s", "nightly"}
    fast = by_key["every-3s"]
    assert (fast.type, fast.pattern, fast.data, fast.owner) == (
        "echo",
        "*/3 * * * * *",
        {"value": 7},
        None,
    )
    assert fast.next_run is not None
    assert before < fast.next_run <= before + timedelta(seconds=3)
    assert fast.next_run.second % 3 == 0 and fast.next_run.microsecond == 0
    nightly = by_key["nightly"]
    assert nightly.tz == "Europe/Paris" and nightly.next_run is not None
    assert nightly.next_run.astimezone(ZoneInfo("Europe/Paris")).hour == 3


async def test_removal_deletes_the_pending_delayed_run(app: ServerApp) -> None:
    manager = app.queue_manager
    job = await manager.schedule_cron_job("echo", "0 3 * * *", {}, "nightly")
    assert job.next_run is not None
    pending = f"repeat:nightly:{int(job.next_run.timestamp() * 1000)}"
    assert await manager.queue.getJobState(pending) == "delayed"

    assert await manager.remove_cron_job("nightly") is True

    assert await manager.queue.getJobState(pending) == "unknown"
    assert await app.redis.exists(manager.queue.toKey(pending)) == 0
    assert await manager.list_cron_jobs() == []
    assert await pending_counts(manager) == {"waiting": 0, "prioritized": 0, "delayed": 0, "active": 0}
    assert await manager.remove_cron_job("nightly") is False


async def test_removal_deletes_a_pending_run_that_is_already_due(app: ServerApp) -> None:
    """bullmq's removeJobScheduler leaves a due run (promoted, not yet started): it would run."""
    manager = app.queue_manager
    job = await manager.schedule_cron_job("echo", "* * * * * *", {}, "every-second")
    assert job.next_run is not None
    pending = f"repeat:every-second:{int(job.next_run.timestamp() * 1000)}"
    await manager.queue.promoteJobs()  # due, taken out of `delayed`, not yet started
    assert await manager.queue.getJobState(pending) == "waiting"

    assert await manager.remove_cron_job("every-second") is True

    assert await manager.queue.getJobState(pending) == "unknown"
    assert await app.redis.exists(manager.queue.toKey(pending)) == 0
    assert await pending_counts(manager) == {"waiting": 0, "prioritized": 0, "delayed": 0, "active": 0}


async def test_removal_stops_future_runs(app: ServerApp, start_worker: StartWorker) -> None:
    manager = app.queue_manager
    await start_worker(worker_queue_concurrency=2)
    await manager.schedule_cron_job("recordRun", "* * * * * *", {}, "every-second")

    async def two_runs() -> bool:
        return len(await recorded_runs(app.redis)) >= 2

    await eventually(two_runs, 10, "two runs of the schedule")
    assert await manager.remove_cron_job("every-second") is True

    async def idle() -> bool:  # a run that had just started may still finish
        return (await pending_counts(manager))["active"] == 0

    await eventually(idle, 15, "the last run to finish")
    count = len(await recorded_runs(app.redis))

    await asyncio.sleep(2.5)  # time passing is the point: two more runs would be due by now

    assert len(await recorded_runs(app.redis)) == count
    assert await pending_counts(manager) == {"waiting": 0, "prioritized": 0, "delayed": 0, "active": 0}


async def test_every_second_schedule_run_by_two_worker_processes_runs_once_per_second(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    manager = app.queue_manager
    workers = [start_quickdapp("worker", worker_queue_concurrency=2) for _ in range(2)]

    await idle_on_redis(app.redis, 2, timeout=60)  # both started, waiting for work
    await manager.schedule_cron_job("recordRun", "* * * * * *", {}, "every-second")
    await asyncio.sleep(5.2)
    assert await manager.remove_cron_job("every-second")
    # SIGTERM lets a run that had started finish, with its audit row.
    for worker in workers:
        worker.terminate()
    codes = [await worker.exited(30) for worker in workers]
    assert codes == [0, 0], [worker.log()[-2000:] for worker in workers]

    executed = [run["job_id"] for run in await recorded_runs(app.redis)]
    rows = (await get_job_history(app.sessions, type="recordRun", limit=100)).items
    assert len(executed) == len(set(executed)), f"a run was executed twice: {executed}"
    assert sorted(executed) == sorted(row.job_id for row in rows)
    assert all(row.status == "completed" and row.attempt == 1 for row in rows)
    assert 4 <= len(rows) <= 7, f"{len(rows)} runs in ~5 s"
    scheduled = sorted(int(job_id.rsplit(":", 1)[1]) for job_id in executed)
    assert all(job_id.startswith("repeat:every-second:") for job_id in executed)
    assert len(set(scheduled)) == len(scheduled)
    assert all(ms % 1000 == 0 for ms in scheduled)
