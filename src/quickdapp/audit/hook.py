"""The audit trail as an attempt hook: every attempt that ends becomes an entry of the audit
stream, which the audit writer moves into `worker_jobs`."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from quickdapp.attempts import AttemptHook, JobExecution
from quickdapp.audit import stream

logger = logging.getLogger(__name__)


class AuditHook(AttemptHook):
    """Appends each finished or stalled attempt to the audit stream."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def after(self, execution: JobExecution) -> None:
        try:
            await stream.add(self._redis, execution)
        except Exception:
            # The job's effect has happened; failing it now would run it again. Say so loudly.
            logger.exception(
                "could not write the audit entry of %s job %s attempt %d",
                execution.type,
                execution.job_id,
                execution.attempt,
            )

    stalled = after
