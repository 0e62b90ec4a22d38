"""The audit trail's way through Redis: every ended attempt becomes one entry of a stream.

An entry is written where the attempt ends, in Redis, as durable as the job's own state: when
the worker finishes a job, in the same transaction as BullMQ's finishing call (guarded by the
job's lock token, see GUARDED_ADD); for a stalled attempt, by the stalled check, in its own
transaction (what it captured of the job, read by `audit.stalled`). The audit
writer (audit/writer.py) moves entries into `worker_jobs` in batches and acknowledges them only
after its commit, so a slow or absent database delays rows but never loses one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from quickdapp.attempts import JobExecution
from quickdapp.audit.stalled import stalled_execution
from quickdapp.broker.job import StalledAttempt
from quickdapp.json_text import compact_or_text
from quickdapp.limits import AUDIT_DATA_MAX_BYTES

logger = logging.getLogger(__name__)

FIELD = "e"
AUDIT_PREVIEW_CHARS = 1_000  # of a truncated value, kept in its place

# KEYS[1] the job's lock, KEYS[2] the audit stream; ARGV[1] the worker's lock token, ARGV[2] the
# entry. Added only while the lock is the worker's: then BullMQ's finishing call, next in the
# same MULTI, finds the same lock and succeeds. A worker that lost its lock (its job was taken
# back by the stalled check, which writes that attempt's entry) adds nothing. Sent with every
# job (EVAL), so it carries no comments: Redis reads and hashes all of it each time.
GUARDED_ADD = (
    "if redis.call('GET',KEYS[1])==ARGV[1] then "
    "return redis.call('XADD',KEYS[2],'*','e',ARGV[2]) end return false"
)


def encode(execution: JobExecution) -> str:
    """The stream entry of `execution`: compact JSON, times in ISO 8601 with their zone.

    A job's data or result past AUDIT_DATA_MAX_BYTES of JSON is kept as a marker with its size
    and the start of it: a 5 MB payload would otherwise be stored once per attempt.
    """
    fields = {
        "job_id": execution.job_id,
        "attempt": execution.attempt,
        "type": execution.type,
        "user_id": execution.user_id,
        "data": execution.data,
        "status": execution.status,
        "started_at": execution.started_at.isoformat(),
        "completed_at": execution.completed_at.isoformat(),
        "result": execution.result,
        "error": execution.error,
    }
    text = compact_or_text(fields)  # a result JSON cannot hold is kept as its text
    if len(text) <= AUDIT_DATA_MAX_BYTES:
        return text  # the usual case: one encoding
    return compact_or_text(
        {**fields, "data": _bounded(fields["data"]), "result": _bounded(fields["result"])}
    )


def _bounded(value: Any) -> Any:
    text = compact_or_text(value)
    if len(text) <= AUDIT_DATA_MAX_BYTES:
        return value
    return {"truncated": True, "bytes": len(text.encode()), "preview": text[:AUDIT_PREVIEW_CHARS]}


class NotAnEntry(ValueError):
    """Raised by `decode` for what is not an audit entry."""


def decode(entry: str | bytes) -> JobExecution:
    """The execution an entry holds; raises NotAnEntry for one this code did not write."""
    try:
        fields: dict[str, Any] = json.loads(entry)
        if "stalled" in fields:  # the job's data as Redis held it: bounded here
            execution = stalled_execution(StalledAttempt.from_json(entry))
            return replace(execution, data=_bounded(execution.data))
        return JobExecution(
            job_id=str(fields["job_id"]),
            attempt=int(fields["attempt"]),
            type=str(fields["type"]),
            user_id=fields["user_id"],
            data=fields["data"],
            status=fields["status"],
            started_at=datetime.fromisoformat(fields["started_at"]),
            completed_at=datetime.fromisoformat(fields["completed_at"]),
            result=fields["result"],
            error=fields["error"],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise NotAnEntry(f"not an audit entry: {exc}") from exc
