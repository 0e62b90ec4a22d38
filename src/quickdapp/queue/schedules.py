"""Default jobs, registered by convention at start-up: one table, one job scheduler per row.

`setup_default_jobs` makes the queue's schedulers match the table and may run any number of
times, from any number of processes at once: BullMQ keeps one scheduler per key (an upsert
replaces it), a changed row updates its scheduler, and a scheduler the table owns but no longer
wants (row disabled or deleted) is removed. The table owns the keys in its rows and every
scheduler it marked as its own (`owner="defaults"`); schedules created by users are never
touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quickdapp.config import Settings
from quickdapp.queue.manager import CronJob, QueueManager

logger = logging.getLogger(__name__)

OWNER = "defaults"


def chain_configured(settings: Settings) -> bool:
    """True when the settings name a chain to watch (CHAIN_RPC_URL)."""
    return settings.chain_configured


def audit_cleanup_enabled(settings: Settings) -> bool:
    return settings.audit_log_retention_days > 0


def _always(settings: Settings) -> bool:
    return True


def _no_data(settings: Settings) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class DefaultJob:
    """One row of the table: run `type` on `pattern` under scheduler `key` when `enabled`."""

    type: str
    key: str
    pattern: str
    data: Callable[[Settings], dict[str, Any]] = _no_data
    enabled: Callable[[Settings], bool] = _always
    tz: str | None = None


DEFAULT_JOBS: tuple[DefaultJob, ...] = (
    DefaultJob("watchChain", "watch-chain", "*/3 * * * * *", enabled=chain_configured),
    DefaultJob(
        "cleanupAuditLog",
        "cleanup-audit-log",
        "0 3 * * *",
        data=lambda s: {"retentionDays": s.audit_log_retention_days},
        enabled=audit_cleanup_enabled,
    ),
)


@dataclass
class SetupReport:
    """What `setup_default_jobs` did, by scheduler key."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


async def setup_default_jobs(
    manager: QueueManager, settings: Settings, table: tuple[DefaultJob, ...] = DEFAULT_JOBS
) -> SetupReport:
    """Make the queue's default schedules match `table` for these settings (idempotent)."""
    keys = [row.key for row in table]
    if len(set(keys)) != len(keys):
        raise ValueError(f"default jobs table names a scheduler key twice: {keys}")
    existing = {job.key: job for job in await manager.list_cron_jobs()}
    report = SetupReport()
    for row in table:
        current = existing.get(row.key)
        if not row.enabled(settings):
            if current is not None and await manager.remove_cron_job(row.key):
                report.removed.append(row.key)
            continue
        data = row.data(settings)
        if current is not None and _matches(current, row, manager.job_data(row.type, data)):
            report.unchanged.append(row.key)
            continue
        await manager.schedule_cron_job(row.type, row.pattern, data, row.key, row.tz, owner=OWNER)
        (report.updated if current is not None else report.created).append(row.key)
    for key, job in existing.items():
        # A scheduler this table created whose row has since been deleted.
        if job.owner == OWNER and key not in keys and await manager.remove_cron_job(key):
            report.removed.append(key)
    logger.info(
        "default schedules: created %s, updated %s, unchanged %s, removed %s",
        report.created,
        report.updated,
        report.unchanged,
        report.removed,
    )
    return report


def _matches(current: CronJob, row: DefaultJob, data: dict[str, Any]) -> bool:
    # Left alone when nothing changed, so a start-up does not reset a pending run's timer.
    return (
        current.type == row.type
        and current.pattern == row.pattern
        and current.tz == row.tz
        and current.data == data
        and current.owner == OWNER
    )
