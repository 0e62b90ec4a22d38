"""The audit trail of stalled jobs: attempts whose process died (or froze) never write their own row.

BullMQ's stalled check moves such a job back to wait (any live worker runs the check): the
attempt that stalled goes through the attempt hooks' `stalled`, so it gets an audit row and a
metric like any other. After WORKER_QUEUE_MAX_STALLED_COUNT stalls BullMQ marks the job, and
the next worker to take it fails it with "job stalled more than allowable limit" without
running it: that last attempt ends in the worker like any other (workers/processor.py).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from quickdapp.attempts import UNKNOWN_TYPE, JobExecution
from quickdapp.keys import (
    FIELD_DATA,
    FIELD_DEFERRED_FAILURE,
    FIELD_NAME,
    FIELD_PROCESSED_ON,
    FIELD_STALLED_COUNT,
    job_key,
)
from quickdapp.workers.hooks import Hooks

if TYPE_CHECKING:
    from quickdapp.app.server_app import ServerApp

logger = logging.getLogger(__name__)

STALLED_REASON = "job stalled more than allowable limit"


async def record_stalled_attempt(app: ServerApp, hooks: Hooks, job_id: str, attempt: int) -> None:
    """Audit `attempt` of `job_id`, which just stalled, as a failed row of its own.

    `attempt` comes from the stalled check itself (read in the same transaction), since the
    job may already run its next attempt in another process by the time this reads it.
    """
    fields: list[Any] = await app.redis.hmget(
        job_key(job_id),
        FIELD_NAME,
        FIELD_DATA,
        FIELD_STALLED_COUNT,
        FIELD_PROCESSED_ON,
        FIELD_DEFERRED_FAILURE,
    )
    name, raw_data, stalls, processed_on, deferred = fields
    if name is None and raw_data is None:
        return  # removed meanwhile: nothing left to describe
    limit = app.settings.worker_queue_max_stalled_count
    note = (
        f"{STALLED_REASON}: it will fail without another run"
        if deferred
        else "moved back to wait: another worker process runs it again"
    )
    error = (
        f"stalled (stall {stalls} of at most {limit}): the worker process running it died or "
        f"stopped renewing its lock within {app.settings.worker_queue_lock_duration} ms; {note}"
    )
    logger.warning("%s job %s attempt %d %s", name, job_id, attempt, error)
    await hooks.stalled(_execution(job_id, name, raw_data, max(attempt, 1), processed_on, error))


def _execution(
    job_id: str,
    name: str | None,
    raw_data: str | None,
    attempt: int,
    processed_on: str | None,
    error: str,
) -> JobExecution:
    try:
        payload = json.loads(raw_data) if raw_data else {}
    except ValueError:
        payload = {"data": {"unreadable": (raw_data or "")[:1000]}}
    payload = payload if isinstance(payload, dict) else {"data": payload}
    user_id = payload.get("userId")
    now = datetime.now(UTC)
    started_at = datetime.fromtimestamp(int(processed_on) / 1000, UTC) if processed_on else now
    return JobExecution(
        job_id=job_id,
        attempt=attempt,
        type=name or UNKNOWN_TYPE,
        user_id=user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None,
        data=payload.get("data") or {},
        status="failed",
        started_at=min(started_at, now),
        completed_at=now,
        error=error,
    )
