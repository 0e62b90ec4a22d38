"""Reads of the queue for health, the dashboard and the CLI: counts, jobs, workers. Changes nothing.

Live workers come from Redis CLIENT LIST, one entry per Worker rather than per connection: a
bullmq Worker holds two connections (commands and blocking pops) under one client name.
Workers of this system are named uniquely (host:pid:suffix); unnamed workers (other tools)
share one name and are counted in pairs. Worker processes come from their heartbeats.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bullmq import Job, Queue

from quickdapp.keys import HEARTBEATS, JOB_STATES, WORKER_NAME_MARKER, JobState, heartbeat_key

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
        """The workers connected now (from CLIENT LIST); [] where the server refuses it."""
        try:
            clients = await self._queue.get_workers()
        except Exception:  # the count is informative; a Redis without CLIENT LIST must not break pages
            return []
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for client in clients:
            if "rawname" in client:
                groups[str(client["rawname"])].append(client)
        workers = []
        for rawname, connections in sorted(groups.items()):
            _, marker, name = rawname.partition(WORKER_NAME_MARKER)
            if marker:
                workers.append(_worker(name, connections))
            else:
                # Unnamed workers: indistinguishable, so count them by their connections.
                for start in range(0, len(connections), CONNECTIONS_PER_WORKER):
                    pair = connections[start : start + CONNECTIONS_PER_WORKER]
                    workers.append(_worker("(unnamed)", pair))
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
