"""The unified processor: one entry point that runs any job's handler and audits every attempt.

It depends only on a job's id, name, data and attempt counters, not on bullmq's Worker, so a
leaner worker loop can replace the Worker without touching handlers, processor or audit.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from bullmq import UnrecoverableError

from quickdapp.db.audit import JobExecution, Status
from quickdapp.db.audit_writer import AuditWriter
from quickdapp.jobs.registry import JobRegistry
from quickdapp.jobs.types import JobContext, PermanentJobError
from quickdapp.queue.exclusive import run_exclusive
from quickdapp.queue.payload import read_payload
from quickdapp.web.metrics import record_job

if TYPE_CHECKING:
    from quickdapp.app import ServerApp

logger = logging.getLogger(__name__)


class QueuedJob(Protocol):
    """What the processor reads of a job (bullmq's Job has all of it)."""

    id: str
    name: str
    data: Any
    attemptsMade: int
    attemptsStarted: int


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes each line with the job's type and id."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = self.extra or {}
        return f"[{extra['job_type']} {extra['job_id']}] {msg}", kwargs


class JobProcessor:
    """Looks up the handler, validates the data, runs it, records the attempt, re-raises failures."""

    def __init__(self, app: ServerApp, registry: JobRegistry) -> None:
        self._app = app
        self._registry = registry
        self._audit = AuditWriter(app.sessions)

    async def __call__(self, job: QueuedJob, token: str | None = None) -> Any:
        started_at = datetime.now(UTC)
        began = time.perf_counter()
        # BullMQ counts every start, stalled restarts included, so each try gets its own row.
        attempt = max(job.attemptsStarted, job.attemptsMade + 1)
        # Until the payload is read, the audit row keeps what was sent (a Node service may
        # have written it in another form).
        user_id: int | None = None
        data: Any = job.data
        try:
            payload = read_payload(job.data)
            user_id, data = payload.user_id, payload.data
            result = await self._run(job, user_id, data, attempt)
        except Exception as exc:
            await self._record(job, attempt, user_id, data, "failed", started_at, error=_describe(exc))
            record_job(job.name, "failed", time.perf_counter() - began)
            if isinstance(exc, PermanentJobError):
                # An unknown type, bad data, a missing configuration: another try cannot help.
                raise UnrecoverableError(str(exc)) from exc
            raise
        await self._record(job, attempt, user_id, data, "completed", started_at, result=result)
        record_job(job.name, "completed", time.perf_counter() - began)
        return result

    async def _run(self, job: QueuedJob, user_id: int | None, data: Any, attempt: int) -> Any:
        definition = self._registry.get(job.name)
        model = definition.parse(data)
        context = JobContext(
            app=self._app,
            logger=JobLogger(
                logging.getLogger(f"quickdapp.job.{job.name}"),
                {"job_type": job.name, "job_id": job.id},
            ),
            job_id=str(job.id),
            type=job.name,
            user_id=user_id,
            data=model,
            attempt=attempt,
        )
        if definition.exclusive:
            ttl_ms = self._app.settings.worker_queue_lock_duration
            return await run_exclusive(self._app.redis, definition, context, ttl_ms)
        return await definition.run(context)

    async def _record(
        self,
        job: QueuedJob,
        attempt: int,
        user_id: Any,
        data: Any,
        status: Status,
        started_at: datetime,
        *,
        result: Any = None,
        error: str | None = None,
    ) -> None:
        execution = JobExecution(
            job_id=str(job.id),
            attempt=attempt,
            type=job.name,
            user_id=user_id if isinstance(user_id, int) else None,
            data=data if data is not None else {},
            status=status,
            started_at=started_at,
            completed_at=datetime.now(UTC),
            result=result,
            error=error,
        )
        try:
            await self._audit.record(execution)
        except Exception:
            # The job's effect has happened; failing it now would run it again. Say so loudly.
            logger.exception("could not write the audit row of %s job %s", job.name, job.id)


def _describe(exc: BaseException) -> str:
    """The error text kept in the audit row: type, message and the innermost frames."""
    frames = traceback.format_exception(exc, limit=-8)
    return "".join(frames)[-8000:]
