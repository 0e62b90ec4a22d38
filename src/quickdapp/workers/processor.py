"""The unified processor: runs one attempt of any job between the attempt hooks.

The worker engine hands it a job as Redis holds it; it reads the job defensively (a job whose
name is missing or whose data or options are not JSON fails at once, with a reason, and is
audited like any other), looks up the handler, validates the data, runs the handler between
the hooks, and says how the attempt ended. The engine then ends the attempt in BullMQ with the
hooks' `finishing` commands in the same transaction (the audit entry) and calls `after`.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from quickdapp.attempts import UNKNOWN_TYPE, Attempt, Command, JobExecution, Status
from quickdapp.broker.job import ActiveJob
from quickdapp.errors import PermanentJobError
from quickdapp.jobs.registry import JobRegistry
from quickdapp.jobs.types import JobContext, JobReporter, JobResources
from quickdapp.json_text import compact
from quickdapp.queue.payload import Payload, PayloadFormError, read_payload
from quickdapp.workers.engine import DeferredFailure, Engine, Outcome
from quickdapp.workers.hooks import Hooks

logger = logging.getLogger(__name__)

RAW_TEXT_KEPT = 1_000  # characters of an unreadable payload kept in its audit row


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes each line with the job's type and id."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = self.extra or {}
        return f"[{extra['job_type']} {extra['job_id']}] {msg}", kwargs


class PoisonJobError(PermanentJobError):
    """A job in Redis that cannot be read as a job of this system: no retry can help."""


class ResultNotJsonError(PermanentJobError):
    """A handler returned what JSON cannot hold (NaN, an object...): BullMQ cannot store it."""


class JobProcessor:
    """Runs attempts for the engine: `__call__` (process), `finish_extras`, `on_finished`."""

    def __init__(self, resources: JobResources, registry: JobRegistry, hooks: Hooks) -> None:
        self._resources = resources
        self._registry = registry
        self._hooks = hooks
        self.engine: Engine | None = None  # set once the engine exists (progress and logs)
        self._unrun: dict[str, JobExecution] = {}  # by token: jobs failed without running

    async def __call__(self, job: ActiveJob) -> Outcome:
        attempt, unreadable = _attempt(job)
        try:
            if unreadable is not None:
                raise unreadable
            result = await self._run(attempt, job)
        except asyncio.CancelledError:
            # The worker closed before the handler ended: the job stays active and the
            # stalled check takes it back (and audits the attempt); only release what it holds.
            closing = _finished(attempt, "failed", error="the worker closed before it ended")
            await self._hooks.after(closing, recorded=False)
            raise
        except Exception as exc:
            return _failed(attempt, exc)
        try:
            encoded = compact(result)
        except (TypeError, ValueError) as exc:
            # Failed here, not by the engine, so that the audit row says so too.
            return _failed(attempt, ResultNotJsonError(f"return value is not JSON: {exc}"))
        execution = _finished(attempt, "completed", result=result)
        return Outcome(value=result, context=execution, value_json=encoded)

    def finish_extras(self, job: ActiveJob, outcome: Outcome) -> Sequence[Command]:
        """The hooks' commands for the transaction that ends this attempt in BullMQ."""
        return self._hooks.finishing(self._execution(job, outcome), job.token)

    async def on_finished(self, job: ActiveJob, outcome: Outcome, recorded: bool) -> None:
        execution = self._execution(job, outcome, done=True)
        if outcome.error is not None:
            retried = outcome.retry and job.attempts_made + 1 < job.attempts
            logger.warning(
                "%s job %s failed (attempt %d of %d%s): %s",
                execution.type,
                job.id,
                execution.attempt,
                job.attempts,
                ", will retry" if retried else "",
                outcome.error,
            )
        await self._hooks.after(execution, recorded)

    def _execution(self, job: ActiveJob, outcome: Outcome, *, done: bool = False) -> JobExecution:
        if isinstance(outcome.context, JobExecution):
            return outcome.context
        # Failed by BullMQ without running (it stalled too often): one record for both calls.
        execution = self._unrun.pop(job.token, None) if done else self._unrun.get(job.token)
        if execution is None:
            attempt, _ = _attempt(job)
            error = outcome.error if outcome.error is not None else DeferredFailure("failed unrun")
            execution = _finished(attempt, "failed", error=_unrun_reason(job, error))
            if not done:
                self._unrun[job.token] = execution
        return execution

    async def _run(self, attempt: Attempt, job: ActiveJob) -> Any:
        definition = self._registry.get(attempt.type)
        model = definition.parse(attempt.data)
        skip = await self._hooks.before(attempt)
        if skip is not None:
            return skip.result
        context = JobContext(
            app=self._resources,
            logger=JobLogger(
                _job_logger(attempt.type),
                {"job_type": attempt.type, "job_id": attempt.job_id},
            ),
            job_id=attempt.job_id,
            type=attempt.type,
            user_id=attempt.user_id,
            data=model,
            attempt=attempt.number,
            report=_Reporter(self, job),
        )
        return await definition.run(context)


class _Reporter(JobReporter):
    def __init__(self, processor: JobProcessor, job: ActiveJob) -> None:
        self._processor = processor
        self._job = job

    async def update_progress(self, value: Any) -> None:
        if self._processor.engine is not None:
            await self._processor.engine.update_progress(self._job, value)

    async def add_log(self, line: str) -> None:
        if self._processor.engine is not None:
            await self._processor.engine.add_log(self._job, line)


def _attempt(job: ActiveJob) -> tuple[Attempt, PermanentJobError | None]:
    """The attempt as far as the job can be read, and what makes it unreadable (if anything)."""
    problem: PermanentJobError | None = None
    payload = Payload(user_id=None, data=None)
    try:
        raw = job.data()
        job.check_opts()
    except ValueError as exc:
        problem = PoisonJobError(f"job {job.id} cannot be read: {exc}")
        payload = Payload(None, {"unreadable": (job.raw_data or "")[:RAW_TEXT_KEPT]})
    else:
        try:
            payload = read_payload(raw)
        except PayloadFormError as exc:
            problem = exc
            payload = Payload(None, raw)  # the audit row keeps what was sent
    if not job.name:
        problem = PoisonJobError(f"job {job.id} has no name: BullMQ's `name` field is missing")
    attempt = Attempt(
        job_id=job.id,
        type=job.name or UNKNOWN_TYPE,
        # BullMQ counts every start, stalled restarts included, so each try gets its own row.
        number=max(job.attempts_started, job.attempts_made + 1),
        user_id=payload.user_id,
        data=payload.data,
        started_at=datetime.now(UTC),
    )
    return attempt, problem


@cache
def _job_logger(job_type: str) -> logging.Logger:
    """The logger of a job type's handlers (looked up once per type)."""
    return logging.getLogger(f"quickdapp.job.{job_type}")


def _failed(attempt: Attempt, error: Exception) -> Outcome:
    permanent = isinstance(error, PermanentJobError)
    execution = _finished(attempt, "failed", error=describe_error(error))
    return Outcome(error=error, retry=not permanent, context=execution)


def _unrun_reason(job: ActiveJob, error: BaseException) -> str:
    return (
        f"{error}: failed without running after {job.stalled_counter} stalls "
        "(more than WORKER_QUEUE_MAX_STALLED_COUNT)"
    )


def _finished(
    attempt: Attempt, status: Status, *, result: Any = None, error: str | None = None
) -> JobExecution:
    return JobExecution(
        job_id=attempt.job_id,
        attempt=attempt.number,
        type=attempt.type,
        user_id=attempt.user_id,
        data=attempt.data if attempt.data is not None else {},
        status=status,
        started_at=attempt.started_at,
        completed_at=datetime.now(UTC),
        result=result,
        error=error,
    )


def describe_error(exc: BaseException) -> str:
    """The error text kept in the audit row: type, message and the innermost frames."""
    frames = traceback.format_exception(exc, limit=-8)
    return "".join(frames)[-8000:]
