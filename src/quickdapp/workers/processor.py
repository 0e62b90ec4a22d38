"""The unified processor: runs any job's handler for one attempt, with the hooks around it.

It reads only a job's id, name, data and attempt counters, not bullmq's Worker, so the worker
loop can change without touching handlers, processor, hooks or audit.
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime
from typing import Any, Protocol

from bullmq import UnrecoverableError

from quickdapp.attempts import UNKNOWN_TYPE, Attempt, JobExecution, Status
from quickdapp.errors import PermanentJobError
from quickdapp.jobs.registry import JobRegistry
from quickdapp.jobs.types import JobContext, JobResources
from quickdapp.limits import AUDIT_DATA_MAX_BYTES
from quickdapp.workers.hooks import Hooks

logger = logging.getLogger(__name__)

AUDIT_PREVIEW_CHARS = 1_000


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
    """Looks up the handler, validates the data, runs it between the hooks, re-raises failures."""

    def __init__(self, resources: JobResources, registry: JobRegistry, hooks: Hooks) -> None:
        self._resources = resources
        self._registry = registry
        self._hooks = hooks

    async def __call__(self, job: QueuedJob, token: str | None = None) -> Any:
        attempt = _attempt(job)
        try:
            result = await self._run(attempt)
        except Exception as exc:
            await self._hooks.after(_finished(attempt, "failed", error=describe_error(exc)))
            if isinstance(exc, PermanentJobError):
                # An unknown type, bad data, a missing configuration: another try cannot help.
                raise UnrecoverableError(str(exc)) from exc
            raise
        await self._hooks.after(_finished(attempt, "completed", result=result))
        return result

    async def _run(self, attempt: Attempt) -> Any:
        definition = self._registry.get(attempt.type)
        model = definition.parse(attempt.data)
        skip = await self._hooks.before(attempt)
        if skip is not None:
            return skip.result
        context = JobContext(
            app=self._resources,
            logger=JobLogger(
                logging.getLogger(f"quickdapp.job.{attempt.type}"),
                {"job_type": attempt.type, "job_id": attempt.job_id},
            ),
            job_id=attempt.job_id,
            type=attempt.type,
            user_id=attempt.user_id,
            data=model,
            attempt=attempt.number,
        )
        return await definition.run(context)


def _attempt(job: QueuedJob) -> Attempt:
    payload = job.data if isinstance(job.data, dict) else {}
    user_id = payload.get("userId")
    return Attempt(
        job_id=str(job.id),
        type=job.name or UNKNOWN_TYPE,
        # BullMQ counts every start, stalled restarts included, so each try gets its own row.
        number=max(job.attemptsStarted, job.attemptsMade + 1),
        user_id=user_id if isinstance(user_id, int) else None,
        data=payload.get("data"),
        started_at=datetime.now(UTC),
    )


def _finished(
    attempt: Attempt, status: Status, *, result: Any = None, error: str | None = None
) -> JobExecution:
    return JobExecution(
        job_id=attempt.job_id,
        attempt=attempt.number,
        type=attempt.type,
        user_id=attempt.user_id,
        data=bounded_for_audit(attempt.data if attempt.data is not None else {}),
        status=status,
        started_at=attempt.started_at,
        completed_at=datetime.now(UTC),
        result=bounded_for_audit(result),
        error=error,
    )


def bounded_for_audit(value: Any) -> Any:
    """`value` as an audit row keeps it: whole up to AUDIT_DATA_MAX_BYTES of JSON, else a marker
    saying how large it was, with the start of it (a 5 MB payload would be stored per attempt)."""
    try:
        text = json.dumps(value, default=str)  # ASCII: one character per byte
    except (ValueError, RecursionError):
        return value  # not JSON at all: the audit writer says so, as before
    if len(text) <= AUDIT_DATA_MAX_BYTES:
        return value
    return {"truncated": True, "bytes": len(text), "preview": text[:AUDIT_PREVIEW_CHARS]}


def describe_error(exc: BaseException) -> str:
    """The error text kept in the audit row: type, message and the innermost frames."""
    frames = traceback.format_exception(exc, limit=-8)
    return "".join(frames)[-8000:]
