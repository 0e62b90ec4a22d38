"""The audit record of a stalled attempt: what the stalled check captured, as an execution.

The check adds each capture to the audit stream in its own transaction (broker/scripts.py
`stalled_check`), so the writer reads it from there; the worker that ran the check builds the
same execution for the other hooks (logs, metrics).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from quickdapp.attempts import UNKNOWN_TYPE, JobExecution
from quickdapp.broker.job import StalledAttempt

STALLED_REASON = "job stalled more than allowable limit"
"""BullMQ's failed reason for a job that stalled more than the max stalled count."""


def stalled_execution(stalled: StalledAttempt) -> JobExecution:
    """The failed execution of the attempt that stalled, with a reason that says what happened."""
    note = (
        f"{STALLED_REASON}: it will fail without another run"
        if stalled.deferred_failure
        else "moved back to wait: another worker process runs it again"
    )
    error = (
        f"stalled (stall {stalled.stalls} of at most {stalled.limit}): the worker process running "
        f"it died or stopped renewing its lock within {stalled.lock_ms} ms; {note}"
    )
    payload = _payload(stalled.raw_data)
    user_id = payload.get("userId")
    ended = datetime.fromtimestamp(stalled.at_ms / 1000, UTC)
    started = stalled.processed_on_ms
    return JobExecution(
        job_id=stalled.job_id,
        attempt=stalled.attempt,
        type=stalled.name or UNKNOWN_TYPE,
        user_id=user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None,
        data=payload.get("data") or {},
        status="failed",
        started_at=min(datetime.fromtimestamp(started / 1000, UTC), ended) if started else ended,
        completed_at=ended,
        error=error,
    )


def _payload(raw_data: str | None) -> dict[str, Any]:
    """The job's `{userId, data}` payload, whatever Redis held."""
    try:
        payload = json.loads(raw_data) if raw_data else {}
    except ValueError:
        return {"data": {"unreadable": (raw_data or "")[:1000]}}
    return payload if isinstance(payload, dict) else {"data": payload}
