"""Every Redis key and channel this system names, and every BullMQ job field it reads.

BullMQ's own layout is shared with Node BullMQ and Bull Board, so it is read here exactly as
BullMQ writes it: the queue `jobs` under the prefix `bull` keeps its lists and sets at
`bull:jobs:<suffix>` and each job's hash at `bull:jobs:<job id>`.

The keys of this system's own live under one prefix beside them, `bull:jobs:quickdapp:`. BullMQ
job ids never hold ':' (submit refuses them), so no job's hash can land there.
"""

from __future__ import annotations

import base64
import re
from typing import Literal, get_args

PREFIX = "bull"
QUEUE_NAME = "jobs"
QUEUE_KEY_PREFIX = f"{PREFIX}:{QUEUE_NAME}:"

JobState = Literal["waiting", "prioritized", "active", "delayed", "completed", "failed", "paused"]
JOB_STATES: tuple[JobState, ...] = get_args(JobState)
"""The states a job of the queue can be in, as BullMQ names them, in the order a job moves."""
PENDING_STATES: tuple[JobState, ...] = ("waiting", "prioritized", "delayed", "paused")
"""States of a job that has not started yet."""

# BullMQ's sets and lists of the queue (suffixes of QUEUE_KEY_PREFIX).
ACTIVE = "active"
COMPLETED = "completed"
FAILED = "failed"
EVENTS = "events"
REPEAT = "repeat"

QUEUE_OWN_SUFFIXES = frozenset(
    {
        "active", "wait", "waiting-children", "paused", "completed", "failed", "delayed",
        "prioritized", "repeat", "stalled", "stalled-check", "limiter", "id", "meta", "pc",
        "events", "marker", "metrics", "de", "dn", "quickdapp",
    }
)  # fmt: skip
"""BullMQ's keys of the queue itself (`bull:jobs:<suffix>`, and `<suffix>:...` beneath some),
and ours (`quickdapp:`): the hash at `bull:jobs:<id>` of none of them is a job."""
_SCHEDULER_RUN = re.compile(r"repeat:[^:]+:[0-9]+")

# Fields of a job's hash, as BullMQ writes them.
FIELD_NAME = "name"
FIELD_DATA = "data"
FIELD_ATTEMPTS_STARTED = "ats"
FIELD_STALLED_COUNT = "stc"
FIELD_DEFERRED_FAILURE = "defa"
FIELD_PROCESSED_ON = "processedOn"

OWN_PREFIX = f"{QUEUE_KEY_PREFIX}quickdapp:"
HEARTBEATS = f"{OWN_PREFIX}workers"
"""Sorted set of live worker processes (id -> expiry ms); each has a record at HEARTBEATS:<id>."""

AUDIT_STREAM = f"{OWN_PREFIX}audit"
"""Stream of ended attempts on their way into the audit table (audit/stream.py)."""
AUDIT_GROUP = "writers"
"""The consumer group of the audit writers."""
STALLED_SNAPSHOT_SUFFIX = "quickdapp:stalled-snapshot"
"""Under a queue's prefix: the attempts the stalled check is about to judge (broker/scripts.py);
it lives only inside that check's MULTI/EXEC."""

NOTIFICATIONS_CHANNEL = "notifications"
"""Pub/sub channel on which each stored user notification is published as JSON."""


def queue_key(suffix: str) -> str:
    """The key of BullMQ's `suffix` structure of the queue, e.g. `bull:jobs:completed`."""
    return QUEUE_KEY_PREFIX + suffix


def job_key(job_id: str) -> str:
    """The hash of job `job_id`."""
    return QUEUE_KEY_PREFIX + job_id


def job_lock_key(job_id: str) -> str:
    """The lock a worker holds on job `job_id` while it runs it (value: the worker's token)."""
    return f"{QUEUE_KEY_PREFIX}{job_id}:lock"


def names_a_job(job_id: str) -> bool:
    """Whether `job_id` can be a job's id: not one of QUEUE_OWN_SUFFIXES, and without ':' but
    in the id of a scheduler's run (`repeat:<key>:<millis>`). `repeat:<key>` alone is the
    scheduler's own hash; `<id>:logs`, `de:<id>` and the like are a job's or the queue's lists."""
    if not job_id or job_id in QUEUE_OWN_SUFFIXES:
        return False
    return ":" not in job_id or _SCHEDULER_RUN.fullmatch(job_id) is not None


def scheduler_job_id(scheduler_key: str, run_at_ms: int) -> str:
    """The id BullMQ gives the run of job scheduler `scheduler_key` due at `run_at_ms`."""
    return f"repeat:{scheduler_key}:{run_at_ms}"


def heartbeat_key(process_id: str) -> str:
    """The record of worker process `process_id` (see HEARTBEATS)."""
    return f"{HEARTBEATS}:{process_id}"


def exclusive_lock_key(job_type: str) -> str:
    """The lock a run of an exclusive job type holds while it runs."""
    return f"{OWN_PREFIX}exclusive:{job_type}"


# Workers name their Redis connections so CLIENT LIST can tell them apart. The Python bullmq
# port writes the queue's name in clear, Node BullMQ (and this system's engine) in base64;
# each bullmq lists only its own form, this system both.
_QUEUE_BASE64 = base64.b64encode(QUEUE_NAME.encode()).decode()
WORKER_CLIENT_PREFIXES = (f"{PREFIX}:{QUEUE_NAME}:w:", f"{PREFIX}:{_QUEUE_BASE64}:w:")
UNNAMED_WORKER_CLIENTS = (f"{PREFIX}:{QUEUE_NAME}", f"{PREFIX}:{_QUEUE_BASE64}")
ENGINE_BLOCKING_CLIENT_PREFIX = f"{PREFIX}:{_QUEUE_BASE64}:wb:"
"""This system's engine names its marker-waiting connection apart (workers/engine.py)."""
