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

from bullmq import Job, Queue

from quickdapp.keys import (
    ENGINE_BLOCKING_CLIENT_PREFIX,
    HEARTBEATS,
    JOB_STATES,
    UNNAMED_WORKER_CLIENTS,
    WORKER_CLIENT_PREFIXES,
    JobState,
    heartbeat_key,
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

    async def jobs(self, state: JobState, start: int, end: int, *, oldest_first: bool) -> list[Job]:
        """The jobs of `state` from position `start` to `end` (both included)."""
        return list(await self._queue.getJobs([state], start, end, oldest_first))

    async def job(self, job_id: str) -> Job | None:
        return await self._queue.getJob(job_id)

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
