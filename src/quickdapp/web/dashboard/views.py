"""How the dashboard shows a BullMQ job: a short summary for lists, every field for the detail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from quickdapp.attempts import UNKNOWN_TYPE
from quickdapp.queue.inspection import JobRecord


class JobSummary(BaseModel):
    """One row of a job list."""

    id: str
    type: str
    user_id: int | None
    state: str | None = None
    attempts_made: int
    priority: int
    created_at: datetime | None
    processed_at: datetime | None
    finished_at: datetime | None
    failed_reason: str | None


class JobDetail(JobSummary):
    """Everything Redis holds about one job, and its log lines."""

    data: Any
    options: Any
    attempts_started: int
    max_attempts: int
    delay_ms: int
    progress: Any
    return_value: Any
    stacktrace: Any
    logs: list[str]
    unreadable: list[str] = []
    """Fields whose text is not valid JSON: shown as the raw text they hold."""


class JobPage(BaseModel):
    """One page of the jobs in a state, newest first for finished states."""

    state: str
    total: int
    page: int
    page_size: int
    jobs: list[JobSummary]


def _time(ms: int) -> datetime | None:
    """BullMQ keeps epoch milliseconds; 0 or absent means 'not yet'."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC) if ms > 0 else None
    except (OverflowError, OSError, ValueError):  # a timestamp no calendar has
        return None


def _payload(job: JobRecord) -> dict[str, Any]:
    return job.data if isinstance(job.data, dict) else {}


def summary(job: JobRecord, state: str | None = None) -> JobSummary:
    user_id = _payload(job).get("userId")
    return JobSummary(
        id=job.id,
        type=job.name if job.name is not None else UNKNOWN_TYPE,
        user_id=user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None,
        state=state,
        attempts_made=job.attempts_made,
        priority=job.priority,
        created_at=_time(job.timestamp),
        processed_at=_time(job.processed_on),
        finished_at=_time(job.finished_on),
        failed_reason=job.failed_reason,
    )


def detail(job: JobRecord, state: str, logs: list[str]) -> JobDetail:
    options = job.opts if isinstance(job.opts, dict) else {}
    attempts = options.get("attempts")
    return JobDetail(
        **summary(job, state).model_dump(),
        # The job's own data inside BullMQ's {userId, data}; the whole text when unreadable.
        data=_payload(job).get("data", job.data),
        options=job.opts,
        attempts_started=job.attempts_started,
        max_attempts=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 1,
        delay_ms=job.delay,
        progress=job.progress,
        return_value=job.return_value,
        stacktrace=job.stacktrace,
        logs=logs,
        unreadable=job.unreadable,
    )
