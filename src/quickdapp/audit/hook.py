"""The audit trail as an attempt hook: one `worker_jobs` row for every attempt that ends."""

from __future__ import annotations

import logging

from quickdapp.attempts import AttemptHook, JobExecution
from quickdapp.audit.writer import AuditWriter

logger = logging.getLogger(__name__)


class AuditHook(AttemptHook):
    """Writes each finished or stalled attempt through the process's AuditWriter."""

    def __init__(self, writer: AuditWriter) -> None:
        self._writer = writer

    async def after(self, execution: JobExecution) -> None:
        try:
            await self._writer.record(execution)
        except Exception:
            # The job's effect has happened; failing it now would run it again. Say so loudly.
            logger.exception(
                "could not write the audit row of %s job %s attempt %d",
                execution.type,
                execution.job_id,
                execution.attempt,
            )

    stalled = after
