"""Reads of the queue for health, the dashboard and the CLI: counts, jobs, workers. Changes nothing.

Live workers come from Redis CLIENT LIST, one entry per worker rather than per connection:
a worker names its command connection `bull:<queue>:w:<name>` (the Python bullmq form) or
`bull:<base64(queue)>:w:<name>` (Node BullMQ's, which this system's engine uses too, so Node
tools list it); a bullmq Worker's two connections share one name. Workers of this system are
named uniquely (host:pid:suffix); unnamed workers (other tools) share one name and are
counted in pairs. Worker processes come from their heartbeats.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bullmq import Queue
from redis.exceptions import ResponseError

from quickdapp.keys import (
    ENGINE_BLOCKING_CLIENT_PREFIX,
    FIELD_ATTEMPTS_STARTED,
    FIELD_DATA,
    FIELD_NAME,
    FIELD_PROCESSED_ON,
    HEARTBEATS,
    JOB_STATES,
    UNNAMED_WORKER_CLIENTS,
    WORKER_CLIENT_PREFIXES,
    JobState,
    heartbeat_key,
    job_key,
    names_a_job,
)

CONNECTIONS_PER_WORKER = 2


@dataclass(frozen=True)
class LiveWorker:
    """A Worker connected to the queue now."""

    name: str
    addresses: list[str]
    age_seconds: int


@dataclass(frozen=True)
class WorkerProcessInfo:
    """One live worker process, as of its last heartbeat."""

    id: str
    host: str
    pid: int
    started_at: datetime
    updated_at: datetime
    concurrency: int
    jobs_in_progress: int
    job_ids: list[str]


class QueueInspection:
    """Reads the `jobs` queue through bullmq's Queue and the heartbeats beside it."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    async def counts(self) -> dict[JobState, int]:
        """Jobs per state, every state present."""
        counts = await self._queue.getJobCounts(*JOB_STATES)
        return {state: int(counts.get(state, 0)) for state in JOB_STATES}

    async def count(self, state: JobState) -> int:
        return int(await self._queue.getJobCountByTypes(state))

    async def is_paused(self) -> bool:
        return bool(await self._queue.isPaused())

    async def jobs(
        self, state: JobState, start: int, end: int, *, oldest_first: bool
    ) -> list[JobRecord]:
        """The jobs of `state` from position `start` to `end` (both included), read as they are
        (see JobRecord); an id in the list that names no job hash is left out."""
        ids = [
            _text(job_id)
            for job_id in await self._queue.backend.getRanges([state], start, end, oldest_first)
        ]
        ids = [job_id for job_id in ids if names_a_job(job_id)]
        if not ids:
            return []
        async with self._queue.client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(job_key(job_id))
            hashes = await pipe.execute(raise_on_error=False)
        return [
            JobRecord.from_hash(job_id, fields)
            for job_id, fields in zip(ids, hashes, strict=True)
            if isinstance(fields, dict) and _is_job_hash(fields)
        ]

    async def job(self, job_id: str) -> JobRecord | None:
        """Job `job_id` as Redis holds it, or None when there is no such job: also when the id
        names one of the queue's own keys (`meta`, `events`, a scheduler's `repeat:<key>`)."""
        if not names_a_job(job_id):
            return None
        try:
            fields = await self._queue.client.hgetall(job_key(job_id))
        except ResponseError:  # WRONGTYPE: a key of another kind at that name
            return None
        return JobRecord.from_hash(job_id, fields) if _is_job_hash(fields) else None

    async def state(self, job_id: str) -> str:
        """The job's state, or 'unknown' when there is no such job."""
        return str(await self._queue.getJobState(job_id))

    async def logs(self, job_id: str) -> list[str]:
        found = await self._queue.getJobLogs(job_id)
        return list(found.get("logs", [])) if isinstance(found, dict) else []

    async def live_workers(self) -> list[LiveWorker]:
        """The workers connected now, ours and Node BullMQ's alike (from CLIENT LIST);
        [] where the server refuses CLIENT LIST."""
        try:
            clients = await self._queue.client.client_list()
        except Exception:  # the count is informative; a Redis without CLIENT LIST must not break pages
            return []
        named: dict[str, list[dict[str, Any]]] = defaultdict(list)
        blocking: dict[str, list[dict[str, Any]]] = defaultdict(list)
        unnamed: list[dict[str, Any]] = []
        for client in clients:
            name = str(client.get("name") or "")
            prefix = next((p for p in WORKER_CLIENT_PREFIXES if name.startswith(p)), None)
            if prefix is not None:
                named[name[len(prefix) :]].append(client)
            elif name.startswith(ENGINE_BLOCKING_CLIENT_PREFIX):
                # The engine's marker-waiting connection, named apart so Node counts one
                # worker: listed with its worker, never as one of its own.
                blocking[name[len(ENGINE_BLOCKING_CLIENT_PREFIX) :]].append(client)
            elif name in UNNAMED_WORKER_CLIENTS:
                unnamed.append(client)
        workers = [
            _worker(name, connections + blocking.get(name, []))
            for name, connections in sorted(named.items())
        ]
        # Unnamed workers (bullmq's default) are indistinguishable: count their connections.
        for start in range(0, len(unnamed), CONNECTIONS_PER_WORKER):
            workers.append(_worker("(unnamed)", unnamed[start : start + CONNECTIONS_PER_WORKER]))
        return workers

    async def worker_processes(self) -> list[WorkerProcessInfo]:
        """The live worker processes, oldest first; drops the index entries of expired records."""
        redis = self._queue.client
        await redis.zremrangebyscore(HEARTBEATS, "-inf", int(time.time() * 1000))
        ids = await redis.zrange(HEARTBEATS, 0, -1)
        if not ids:
            return []
        records = await redis.mget([heartbeat_key(_text(process_id)) for process_id in ids])
        processes = [_process(json.loads(raw)) for raw in records if raw]
        return sorted(processes, key=lambda info: (info.started_at, info.id))


@dataclass(frozen=True)
class JobRecord:
    """A job's hash, read without trusting it (another producer, a buggy script or a half-done
    write may have put anything there): a JSON field that does not parse keeps its raw text
    and is named in `unreadable`, a missing name is None, a number that is not one is 0.
    bullmq's own Job.fromJSON raises on the first bad field, so such a job could be neither
    shown nor removed."""

    id: str
    name: str | None
    data: Any
    opts: Any
    progress: Any
    return_value: Any
    stacktrace: Any
    failed_reason: str | None
    attempts_made: int
    attempts_started: int
    priority: int
    delay: int
    timestamp: int
    processed_on: int
    finished_on: int
    unreadable: list[str]

    @classmethod
    def from_hash(cls, job_id: str, fields: dict[str, str]) -> JobRecord:
        unreadable: list[str] = []

        def parsed(field: str, default: Any) -> Any:
            raw = fields.get(field)
            if raw is None:
                return default
            try:
                return json.loads(raw)
            except (ValueError, RecursionError):
                unreadable.append(field)
                return raw

        return cls(
            id=job_id,
            name=fields.get(FIELD_NAME) or None,
            data=parsed(FIELD_DATA, {}),
            opts=parsed("opts", {}),
            progress=parsed("progress", 0),
            return_value=parsed("returnvalue", None),
            stacktrace=parsed("stacktrace", []),
            failed_reason=fields.get("failedReason") or None,
            attempts_made=_int(fields.get("attemptsMade") or fields.get("atm")),
            attempts_started=_int(fields.get(FIELD_ATTEMPTS_STARTED)),
            priority=_int(fields.get("priority")),
            delay=_int(fields.get("delay")),
            timestamp=_int(fields.get("timestamp")),
            processed_on=_int(fields.get(FIELD_PROCESSED_ON)),
            finished_on=_int(fields.get("finishedOn")),
            unreadable=unreadable,
        )


def _is_job_hash(fields: object) -> bool:
    """Whether a hash has any field BullMQ writes when it adds a job."""
    return isinstance(fields, dict) and any(f in fields for f in ("timestamp", "name", "data", "opts"))


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _worker(name: str, connections: list[dict[str, Any]]) -> LiveWorker:
    return LiveWorker(
        name=name,
        addresses=sorted({str(c.get("addr", "?")) for c in connections}),
        age_seconds=max(int(c.get("age", 0) or 0) for c in connections),
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _process(record: dict[str, object]) -> WorkerProcessInfo:
    job_ids = record.get("job_ids")
    return WorkerProcessInfo(
        id=str(record["id"]),
        host=str(record["host"]),
        pid=int(str(record["pid"])),
        started_at=datetime.fromisoformat(str(record["started_at"])),
        updated_at=datetime.fromisoformat(str(record["updated_at"])),
        concurrency=int(str(record["concurrency"])),
        jobs_in_progress=int(str(record["jobs_in_progress"])),
        job_ids=[str(job_id) for job_id in job_ids] if isinstance(job_ids, list) else [],
    )
