"""Default schedules (setup_default_jobs): created once, updated, removed; users' own stay."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.jobs.registry import JobRegistry
from quickdapp.queue.manager import QueueManager
from quickdapp.queue.schedules import DEFAULT_JOBS, OWNER, setup_default_jobs
from tests.helpers.queue import pending_counts


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
