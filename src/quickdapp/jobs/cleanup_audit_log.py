"""cleanupAuditLog: delete audit rows older than the retention period, never a running job's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from pydantic import Field

from quickdapp.jobs.types import JobContext, JobData, JobDefinition
from quickdapp.keys import COMPLETED, FAILED, job_key, queue_key
from quickdapp.limits import MAX_RETENTION_DAYS

ROLLUP_RETENTION_DAYS = 400
"""The per-minute and per-hour rollups (small: ~2 MB a month) outlive the rows they sum."""


class CleanupAuditLogData(JobData):
    # Bounded: a cutoff before year 1 would fail at run time, three times, instead of at submit.
    retention_days: int = Field(alias="retentionDays", ge=1, le=MAX_RETENTION_DAYS)
    batch_size: int = Field(default=5000, alias="batchSize", ge=1, le=10_000)
    rollup_retention_days: int | None = Field(
        default=None, alias="rollupRetentionDays", ge=1, le=MAX_RETENTION_DAYS
    )
    """Days of rollups kept; by default the longer of retentionDays and 400."""


async def cleanup_audit_log(ctx: JobContext[CleanupAuditLogData]) -> dict[str, Any]:
    # SQLAlchemy only when the job runs: worker processes otherwise never load it.
    from quickdapp.audit.cleanup import delete_job_history_before
    from quickdapp.audit.rollups import prune_rollups

    now = datetime.now(UTC)
    cutoff = now - timedelta(days=ctx.data.retention_days)
    redis = ctx.app.redis

    async def keep(job_ids: set[str]) -> set[str]:
        return await unfinished_job_ids(redis, job_ids)

    deleted = await delete_job_history_before(
        ctx.app.sessions, cutoff, batch_size=ctx.data.batch_size, keep=keep
    )
    # Rollups never go before the rows they sum: metrics over a window would lose its counts.
    rollup_days = max(ctx.data.retention_days, ctx.data.rollup_retention_days or ROLLUP_RETENTION_DAYS)
    rollups = await prune_rollups(ctx.app.sessions, now - timedelta(days=rollup_days))
    ctx.logger.info(
        "deleted %d audit rows created before %s and %d rollup rows older than %d days",
        deleted,
        cutoff.isoformat(),
        rollups,
        rollup_days,
    )
    return {"deleted": deleted, "cutoff": cutoff.isoformat(), "rollupsDeleted": rollups}


async def unfinished_job_ids(redis: aioredis.Redis, job_ids: set[str]) -> set[str]:
    """Those of `job_ids` whose job is still in the queue and not finished.

    Audit rows are written at the end of each attempt, so a job with rows may still be running
    a later attempt, or waiting for its retry: its history stays whole until it finishes.
    """
    ids = sorted(job_ids)
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.exists(job_key(job_id))
            pipe.zscore(queue_key(COMPLETED), job_id)
            pipe.zscore(queue_key(FAILED), job_id)
        replies = await pipe.execute()
    return {
        job_id
        for i, job_id in enumerate(ids)
        if replies[3 * i] and replies[3 * i + 1] is None and replies[3 * i + 2] is None
    }


CLEANUP_AUDIT_LOG = JobDefinition(
    name="cleanupAuditLog",
    model=CleanupAuditLogData,
    priority=10,
    handler=cleanup_audit_log,
    description="Delete audit rows older than retentionDays (never those of unfinished jobs)",
)
