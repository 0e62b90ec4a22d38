"""One attempt of a job, what it did, and the hooks that see every attempt start and end.

The processor runs one attempt and calls the hooks around it, as dramatiq's middleware does:
the audit trail, the Prometheus metrics and the exclusive lock are hooks. Every path that ends
an attempt (completion, failure, stall, a job that cannot even be read) goes through them, so
the audit table and the metrics always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Status = Literal["completed", "failed"]
UNKNOWN_TYPE = "(unknown)"
"""The type recorded for a job whose name is missing."""

Command = Sequence[str | bytes | int | float]
"""A raw Redis command, e.g. ("EVALSHA", sha, 1, key, arg)."""


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

    For an attempt this worker runs: `before` (in hook order; a Skip ends the attempt as
    completed without running the handler), the handler, then `finishing` (in reverse order):
    Redis commands that run in one transaction with BullMQ's call that ends the attempt, while
    the worker holds the job's lock (`token`), so they take effect exactly when BullMQ records
    the end. Then `after` (in reverse order), on every path, with `recorded` telling whether
    BullMQ recorded the end (False when the worker had lost the job to the stalled check, or
    was closing). A job BullMQ fails without running (it stalled too often) gets `finishing`
    and `after` only.

    `stalled` gets the execution of an attempt whose process died or froze, from whichever
    process's stalled check found it: it never reached `finishing`, and holds nothing of this
    process's. What must not be lost is asked for with `stalled_stream`: the check adds each
    attempt it takes back to that stream in its own transaction (what it captured of the job,
    broker/scripts.py). `stalled` itself is best effort: a process may die before it runs.
    """

    stalled_stream: str | None = None

    async def before(self, attempt: Attempt) -> Skip | None:
        return None

    def finishing(self, execution: JobExecution, token: str) -> Sequence[Command]:
        return ()

    async def after(self, execution: JobExecution, recorded: bool) -> None:
        return None

    async def stalled(self, execution: JobExecution) -> None:
        return None
