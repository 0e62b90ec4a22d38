"""cleanupAuditLog: delete audit rows older than the retention period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from quickdapp.db.audit import delete_job_history_before
from quickdapp.jobs.types import JobContext, JobData, JobDefinition


class CleanupAuditLogData(JobData):
    retention_days: int = Field(alias="retentionDays", ge=1)


async def cleanup_audit_log(ctx: JobContext[CleanupAuditLogData]) -> dict[str, Any]:
    cutoff = datetime.now(UTC) - timedelta(days=ctx.data.retention_days)
    deleted = await delete_job_history_before(ctx.app.sessions, cutoff)
    ctx.logger.info("deleted %d audit rows created before %s", deleted, cutoff.isoformat())
    return {"deleted": deleted, "cutoff": cutoff.isoformat()}


CLEANUP_AUDIT_LOG = JobDefinition(
    name="cleanupAuditLog",
    model=CleanupAuditLogData,
    priority=10,
    handler=cleanup_audit_log,
    description="Delete audit rows older than retentionDays",
)
