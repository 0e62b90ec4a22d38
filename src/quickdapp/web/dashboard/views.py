"""How the dashboard shows a BullMQ job: a short summary for lists, every field for the detail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel


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
    options: dict[str, Any]
    attempts_started: int
    max_attempts: int
    delay_ms: int
    progress: Any
    return_value: Any
    stacktrace: list[str]
    logs: list[str]


class JobPage(BaseModel):
    """One page of the jobs in a state, newest first for finished states."""

    state: str
    total: int
    page: int
    page_size: int
    jobs: list[JobSummary]


def _time(ms: Any) -> datetime | None:
    """BullMQ keeps epoch milliseconds; 0 or absent means 'not yet'."""
    try:
        value = int(ms)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(value / 1000, UTC) if value > 0 else None


def _payload(job: Any) -> dict[str, Any]:
    return job.data if isinstance(job.data, dict) else {}


def summary(job: Any, state: str | None = None) -> JobSummary:
    user_id = _payload(job).get("userId")
    return JobSummary(
        id=str(job.id),
        type=job.name,
        user_id=user_id if isinstance(user_id, int) else None,
        state=state,
        attempts_made=int(job.attemptsMade or 0),
        priority=int(job.priority or 0),
        created_at=_time(job.timestamp),
        processed_at=_time(job.processedOn),
        finished_at=_time(job.finishedOn),
        failed_reason=job.failedReason or None,
    )


def detail(job: Any, state: str, logs: list[str]) -> JobDetail:
    options = dict(job.opts or {})
    return JobDetail(
        **summary(job, state).model_dump(),
        data=_payload(job).get("data", job.data),
        options=options,
        attempts_started=int(job.attemptsStarted or 0),
        max_attempts=int(options.get("attempts") or 1),
        delay_ms=int(job.delay or 0),
        progress=job.progress,
        return_value=job.returnvalue,
        stacktrace=list(job.stacktrace or []),
        logs=logs,
    )
