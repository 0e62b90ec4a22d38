"""Scheduled jobs: cron patterns, the schedule lifecycle, default jobs, runs by 2 processes."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import get_job_history
from quickdapp.cli import main
from quickdapp.config import Settings
from quickdapp.errors import JobValidationError
from quickdapp.jobs.registry import JobRegistry
from quickdapp.queue.cron import CronPatternError, validate_cron_pattern
from quickdapp.queue.manager import QueueManager
from quickdapp.queue.schedules import DEFAULT_JOBS, OWNER, setup_default_jobs
from tests.conftest import ROOT, StartWorker
from tests.helpers.jobs import RUNS_KEY
from tests.helpers.processes import settings_env
from tests.helpers.waiting import eventually


async def runs(app: ServerApp) -> list[dict[str, Any]]:
    """Every execution the recordRun job types made, duplicates included."""
    return [json.loads(item) for item in await app.redis.lrange(RUNS_KEY, 0, -1)]


async def pending_counts(manager: QueueManager) -> dict[str, int]:
    counts = await manager.queue.getJobCounts("waiting", "prioritized", "delayed", "active")
    return {state: int(count) for state, count in counts.items()}


# Pattern parsing


@pytest.mark.parametrize(
    "pattern",
    ["*/3 * * * * *", "* * * * * *", "0 3 * * *", "0 0 1 JAN MON", "1-5,10 */2 * * *", "30 0 3 * * 1-5"],
)
def test_valid_5_and_6_field_patterns_are_accepted(pattern: str) -> None:
    validate_cron_pattern(pattern)
    validate_cron_pattern(pattern, "Europe/Paris")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("* * *", "has 3 fields; expected 5"),
        ("0 0 0 * * * *", "has 7 fields"),
        ("@daily", "has 1 fields"),
        ("61 * * * *", "minute field '61' is not valid (expected 0-59"),
        ("0 25 * * *", "hour field '25'"),
        ("*/3 * * * * 99", "day of week field '99'"),
        ("60 * * * * *", "second field '60'"),
        ("*/0 * * * *", "minute field '*/0'"),
        ("x * * * *", "minute field 'x'"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_invalid_patterns_are_refused_with_the_reason(pattern: str, reason: str) -> None:
    with pytest.raises(CronPatternError) as error:
        validate_cron_pattern(pattern)
    assert reason in str(error.value)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(CronPatternError, match="unknown time zone 'Mars/Olympus'"):
        validate_cron_pattern("0 3 * * *", "Mars/Olympus")


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


# Schedule lifecycle


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
        return len(await runs(app)) >= 2

    await eventually(two_runs, 10, "two runs of the schedule")
    assert await manager.remove_cron_job("every-second") is True
    await asyncio.sleep(0.3)  # a run that had just started may still finish
    count = len(await runs(app))

    await asyncio.sleep(2.5)

    assert len(await runs(app)) == count
    assert await pending_counts(manager) == {"waiting": 0, "prioritized": 0, "delayed": 0, "active": 0}


# Default jobs


def all_enabled(table: tuple[Any, ...] = DEFAULT_JOBS) -> tuple[Any, ...]:
    """The default table with watchChain on: chain settings do not exist in this build yet."""
    return tuple(
        replace(row, enabled=lambda s, row=row: row.key == "watch-chain" or row.enabled(s))
        for row in table
    )


async def test_default_jobs_without_a_chain_schedule_only_the_cleanup(
    app: ServerApp, settings: Settings
) -> None:
    report = await setup_default_jobs(app.queue_manager, settings)

    (job,) = await app.queue_manager.list_cron_jobs()
    assert report.created == ["cleanup-audit-log"]
    assert (job.key, job.type, job.pattern, job.owner) == (
        "cleanup-audit-log",
        "cleanupAuditLog",
        "0 3 * * *",
        OWNER,
    )
    assert job.data == {"retentionDays": 30, "batchSize": 5000}
    assert job.next_run is not None and (job.next_run.hour, job.next_run.minute) == (3, 0)


async def test_setup_default_jobs_three_times_leaves_one_scheduler_per_key(
    app: ServerApp, settings: Settings, registry: JobRegistry
) -> None:
    table = all_enabled()
    first = await setup_default_jobs(app.queue_manager, settings, table)
    for _ in range(2):
        again = await setup_default_jobs(app.queue_manager, settings, table)
        assert again.unchanged == ["watch-chain", "cleanup-audit-log"]
        assert again.created == again.updated == again.removed == []
    # Several servers starting at once.
    managers = [QueueManager(settings, registry) for _ in range(3)]
    try:
        await asyncio.gather(*(setup_default_jobs(m, settings, table) for m in managers))
    finally:
        await asyncio.gather(*(m.close() for m in managers))

    jobs = await app.queue_manager.list_cron_jobs()
    assert first.created == ["watch-chain", "cleanup-audit-log"]
    assert sorted(job.key for job in jobs) == ["cleanup-audit-log", "watch-chain"]
    watch = next(job for job in jobs if job.key == "watch-chain")
    assert (watch.type, watch.pattern) == ("watchChain", "*/3 * * * * *")
    # One pending run per scheduler, not one per start-up.
    assert (await pending_counts(app.queue_manager))["delayed"] == 2


async def test_changed_pattern_and_retention_update_the_scheduler(
    app: ServerApp, settings: Settings
) -> None:
    manager = app.queue_manager
    await setup_default_jobs(manager, settings, all_enabled())
    table = tuple(
        replace(row, pattern="30 4 * * *") if row.key == "cleanup-audit-log" else row
        for row in all_enabled()
    )

    report = await setup_default_jobs(
        manager, settings.model_copy(update={"audit_log_retention_days": 7}), table
    )

    assert report.updated == ["cleanup-audit-log"] and report.unchanged == ["watch-chain"]
    job = await manager.get_cron_job("cleanup-audit-log")
    assert job is not None and job.pattern == "30 4 * * *" and job.data["retentionDays"] == 7
    assert job.next_run is not None and (job.next_run.hour, job.next_run.minute) == (4, 30)
    assert len(await manager.list_cron_jobs()) == 2
    assert (await pending_counts(manager))["delayed"] == 2


async def test_retention_zero_removes_the_cleanup_schedule(app: ServerApp, settings: Settings) -> None:
    manager = app.queue_manager
    await setup_default_jobs(manager, settings)
    assert await manager.get_cron_job("cleanup-audit-log") is not None

    report = await setup_default_jobs(
        manager, settings.model_copy(update={"audit_log_retention_days": 0})
    )

    assert report.removed == ["cleanup-audit-log"]
    assert await manager.list_cron_jobs() == []
    assert (await pending_counts(manager))["delayed"] == 0


async def test_a_job_type_removed_from_the_table_loses_its_scheduler_user_schedules_stay(
    app: ServerApp, settings: Settings
) -> None:
    manager = app.queue_manager
    await setup_default_jobs(manager, settings, all_enabled())
    await manager.schedule_cron_job("echo", "0 5 * * *", {}, "users-own")
    without_watch = tuple(row for row in all_enabled() if row.key != "watch-chain")

    report = await setup_default_jobs(manager, settings, without_watch)

    assert report.removed == ["watch-chain"]
    assert sorted(job.key for job in await manager.list_cron_jobs()) == [
        "cleanup-audit-log",
        "users-own",
    ]
    assert (await pending_counts(manager))["delayed"] == 2


# Runs


async def test_every_second_schedule_run_by_two_worker_processes_runs_once_per_second(
    app: ServerApp, settings: Settings, tmp_path: Path
) -> None:
    manager = app.queue_manager
    worker_env = settings_env(settings.model_copy(update={"worker_queue_concurrency": 2}))
    env_file = tmp_path / "worker.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in worker_env.items()))
    env = {k: v for k, v in os.environ.items() if k not in worker_env} | worker_env
    workers = []
    for index in range(2):
        log = (tmp_path / f"worker-{index}.log").open("wb")
        workers.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "quickdapp.cli",
                "--env-file",
                str(env_file),
                "worker",
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        )
        log.close()
    try:

        async def both_connected() -> bool:
            return int(await manager.queue.get_workers_count()) >= 2

        await eventually(both_connected, 60, "two worker processes to connect")
        await manager.schedule_cron_job("recordRun", "* * * * * *", {}, "every-second")
        await asyncio.sleep(5.2)
        assert await manager.remove_cron_job("every-second")
        await asyncio.sleep(0.5)  # the last run writes its audit row
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(worker.wait(), 30) for worker in workers]
    assert codes == [0, 0], [(tmp_path / f"worker-{i}.log").read_text()[-2000:] for i in range(2)]

    executed = [run["job_id"] for run in await runs(app)]
    rows = (await get_job_history(app.sessions, type="recordRun", limit=100)).items
    assert len(executed) == len(set(executed)), f"a run was executed twice: {executed}"
    assert sorted(executed) == sorted(row.job_id for row in rows)
    assert all(row.status == "completed" and row.attempt == 1 for row in rows)
    assert 4 <= len(rows) <= 7, f"{len(rows)} runs in ~5 s"
    scheduled = sorted(int(job_id.rsplit(":", 1)[1]) for job_id in executed)
    assert all(job_id.startswith("repeat:every-second:") for job_id in executed)
    assert len(set(scheduled)) == len(scheduled)
    assert all(ms % 1000 == 0 for ms in scheduled)


@pytest.mark.parametrize("job_type", ["exclusiveRecordRun", "recordRun"])
async def test_exclusive_type_never_overlaps_its_previous_run(
    app: ServerApp, start_worker: StartWorker, job_type: str
) -> None:
    """A 2.5 s run every second: the exclusive type skips the overlapping runs, the other not."""
    manager = app.queue_manager
    await start_worker(worker_queue_concurrency=3)
    await manager.schedule_cron_job(job_type, "* * * * * *", {"ms": 2500}, "slow")
    await asyncio.sleep(5.5)
    await manager.remove_cron_job("slow")

    async def idle() -> bool:
        return (await pending_counts(manager))["active"] == 0

    await eventually(idle, 10, "the last runs to finish")

    executed = sorted(await runs(app), key=lambda run: run["began"])
    overlaps = sum(later["began"] < earlier["ended"] for earlier, later in itertools.pairwise(executed))
    rows = (await get_job_history(app.sessions, type=job_type, limit=100)).items
    skipped = [row for row in rows if isinstance(row.result, dict) and row.result.get("skipped")]
    assert all(row.status == "completed" for row in rows)
    if job_type == "exclusiveRecordRun":
        assert overlaps == 0, executed
        assert len(executed) >= 2
        assert len(skipped) >= 2
        assert len(skipped) + len(executed) == len(rows)
        assert skipped[0].result["reason"] == "a previous exclusiveRecordRun run is still going"
    else:
        assert overlaps >= 2 and skipped == []


# CLI


def test_cli_schedule_list_and_unschedule(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / "cli.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings_env(settings).items()))
    cli = ["--env-file", str(env_file)]

    assert main([*cli, "schedule", "cleanupAuditLog", "0 25 * * *", '{"retentionDays": 9}']) == 2
    assert "hour field '25'" in capsys.readouterr().err
    assert (
        main([*cli, "schedule", "cleanupAuditLog", "0 4 * * *", '{"retentionDays": 9}', "--key", "c"])
        == 0
    )
    assert "scheduled cleanupAuditLog as 'c'" in capsys.readouterr().out

    assert main([*cli, "schedules"]) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["KEY", "TYPE", "PATTERN", "TZ"]
    assert line.split()[:4] == ["c", "cleanupAuditLog", "0", "4"]
    assert line.endswith('04:00:00  {"retentionDays":9,"batchSize":5000}')

    assert main([*cli, "unschedule", "c"]) == 0
    assert main([*cli, "unschedule", "c"]) == 1
    assert "no schedule 'c'" in capsys.readouterr().err
    assert main([*cli, "schedules", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
