"""cleanupAuditLog: delete audit rows older than the retention period, never a running job's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from pydantic import Field

from quickdapp.audit.store import delete_job_history_before
from quickdapp.jobs.types import JobContext, JobData, JobDefinition
from quickdapp.keys import COMPLETED, FAILED, job_key, queue_key
from quickdapp.limits import MAX_RETENTION_DAYS


class CleanupAuditLogData(JobData):
    # Bounded: a cutoff before year 1 would fail at run time, three times, instead of at submit.
    retention_days: int = Field(alias="retentionDays", ge=1, le=MAX_RETENTION_DAYS)
    batch_size: int = Field(default=1000, alias="batchSize", ge=1, le=10_000)


async def cleanup_audit_log(ctx: JobContext[CleanupAuditLogData]) -> dict[str, Any]:
    cutoff = datetime.now(UTC) - timedelta(days=ctx.data.retention_days)
    redis = ctx.app.redis

    async def keep(job_ids: set[str]) -> set[str]:
        return await unfinished_job_ids(redis, job_ids)

    deleted = await delete_job_history_before(
        ctx.app.sessions, cutoff, batch_size=ctx.data.batch_size, keep=keep
    )
    ctx.logger.info("deleted %d audit rows created before %s", deleted, cutoff.isoformat())
    return {"deleted": deleted, "cutoff": cutoff.isoformat()}


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
