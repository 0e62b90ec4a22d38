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
from typing import TYPE_CHECKING

from quickdapp.attempts import UNKNOWN_TYPE, JobExecution
from quickdapp.keys import (
    ACTIVE,
    FIELD_ATTEMPTS_STARTED,
    FIELD_DATA,
    FIELD_DEFERRED_FAILURE,
    FIELD_NAME,
    FIELD_PROCESSED_ON,
    FIELD_STALLED_COUNT,
    job_key,
    queue_key,
)
from quickdapp.workers.hooks import Hooks

if TYPE_CHECKING:
    from quickdapp.app.server_app import ServerApp

logger = logging.getLogger(__name__)

STALLED_REASON = "job stalled more than allowable limit"


async def record_stalled_attempt(app: ServerApp, hooks: Hooks, job_id: str) -> None:
    """Audit the attempt of `job_id` that just stalled, as a failed row of its own.

    The job may already have been taken again by another process: read its counters and
    whether it is active in one transaction, and count back over that new start.
    """
    async with app.redis.pipeline(transaction=True) as pipe:
        pipe.hmget(
            job_key(job_id),
            FIELD_NAME,
            FIELD_DATA,
            FIELD_ATTEMPTS_STARTED,
            FIELD_STALLED_COUNT,
            FIELD_PROCESSED_ON,
            FIELD_DEFERRED_FAILURE,
        )
        pipe.lpos(queue_key(ACTIVE), job_id)
        (name, raw_data, started, stalls, processed_on, deferred), active_at = await pipe.execute()
    if name is None and raw_data is None:
        return  # removed meanwhile: nothing left to describe
    attempt = int(started or 0) - (1 if active_at is not None else 0)
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
    payload = json.loads(raw_data) if raw_data else {}
    payload = payload if isinstance(payload, dict) else {}
    user_id = payload.get("userId")
    now = datetime.now(UTC)
    started_at = datetime.fromtimestamp(int(processed_on) / 1000, UTC) if processed_on else now
    return JobExecution(
        job_id=job_id,
        attempt=attempt,
        type=name or UNKNOWN_TYPE,
        user_id=user_id if isinstance(user_id, int) else None,
        data=payload.get("data") or {},
        status="failed",
        started_at=min(started_at, now),
        completed_at=now,
        error=error,
    )
