"""One attempt of a job, what it did, and the hooks that see every attempt start and end.

The processor runs one attempt and calls the hooks around it, as dramatiq's middleware does:
the audit trail, the Prometheus metrics and the exclusive lock are hooks. Every path that ends
an attempt (completion, failure, stall, a job that cannot even be read) goes through them, so
the audit table and the metrics always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Status = Literal["completed", "failed"]
UNKNOWN_TYPE = "(unknown)"
"""The type recorded for a job whose name is missing."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One start of one job, as the worker hands it to the processor."""

    job_id: str
    type: str
    number: int
    """1 for the first start; every start counts, a stalled one too (BullMQ's attemptsStarted)."""
    user_id: int | None
    data: Any
    started_at: datetime


@dataclass(frozen=True, slots=True)
class JobExecution:
    """What one attempt of one job did, as the processor (or the stalled check) saw it."""

    job_id: str
    attempt: int
    type: str
    user_id: int | None
    data: Any
    status: Status
    started_at: datetime
    completed_at: datetime
    result: Any = None
    error: str | None = None

    @property
    def duration_ms(self) -> int:
        return round((self.completed_at - self.started_at).total_seconds() * 1000)


@dataclass(frozen=True, slots=True)
class Skip:
    """Returned by a hook's `before` to end an attempt as completed, with `result`, unrun."""

    result: Any


class AttemptHook:
    """Something that happens around every attempt. Override what the hook needs.

    For each attempt the processor calls every hook's `before` in order, runs the handler
    (unless a hook returned a Skip), then calls every hook's `after`, in reverse order, with
    the finished execution, whatever happened. `stalled` gets the execution of an attempt
    whose process died or froze: it never reached `after`, and runs wherever the stalled check
    found it, so it holds nothing of this process's.
    """

    async def before(self, attempt: Attempt) -> Skip | None:
        return None

    async def after(self, execution: JobExecution) -> None:
        return None

    async def stalled(self, execution: JobExecution) -> None:
        return None
