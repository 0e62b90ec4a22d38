"""Heartbeats: each worker process keeps a short-lived record in Redis of who it is and what it runs.

Layout, beside BullMQ's keys of the queue and never among them (job ids hold no ':'):

    <prefix>quickdapp:workers          sorted set: process id -> expiry time (ms)
    <prefix>quickdapp:workers:<id>     JSON record with a TTL, id = "<host>:<pid>"

where <prefix> is the queue's key prefix (`bull:jobs:`). A process that dies stops beating;
its record expires after HEARTBEAT_TTL seconds and readers drop it from the index.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis

from quickdapp.workers.outage import OutageLog, is_connection_error

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 2.0  # seconds between records
HEARTBEAT_TTL = 10  # seconds a record outlives its writer
_PROBE_INTERVAL = 0.5  # seconds between tries while Redis is away


def heartbeat_namespace(queue_key_prefix: str) -> str:
    """The index key of the heartbeats of the queue whose keys start with `queue_key_prefix`."""
    return f"{queue_key_prefix}quickdapp:workers"


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


class Heartbeat:
    """Writes this process's record every HEARTBEAT_INTERVAL seconds until stopped."""

    def __init__(
        self,
        redis: aioredis.Redis,
        namespace: str,
        *,
        concurrency: int,
        active_job_ids: Callable[[], Collection[str]],
        outage: OutageLog,
    ) -> None:
        self._redis = redis
        self._index = namespace
        self.id = f"{socket.gethostname()}:{os.getpid()}"
        self._key = f"{namespace}:{self.id}"
        self._concurrency = concurrency
        self._active_job_ids = active_job_ids
        self._outage = outage
        self._started_at = datetime.now(UTC)

    async def beat(self) -> None:
        """Write the record once; raises what Redis raises."""
        job_ids = sorted(self._active_job_ids())
        record = {
            "id": self.id,
            "host": self.id.rsplit(":", 1)[0],
            "pid": os.getpid(),
            "started_at": self._started_at.isoformat(),
            "updated_at": datetime.now(UTC).isoformat(),
            "concurrency": self._concurrency,
            "jobs_in_progress": len(job_ids),
            "job_ids": job_ids,
        }
        expires_ms = int((time.time() + HEARTBEAT_TTL) * 1000)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key, json.dumps(record), ex=HEARTBEAT_TTL)
            pipe.zadd(self._index, {self.id: expires_ms})
            await pipe.execute()

    async def run(self, stop: asyncio.Event) -> None:
        """Beat until `stop` is set. Doubles as the Redis probe: says once when Redis is lost or back."""
        failing = False
        while not stop.is_set():
            try:
                await self.beat()
                self._outage.restored()
                failing = False
            except Exception as exc:
                if is_connection_error(exc):
                    self._outage.lost(exc)
                elif not failing:
                    # Say it once; health shows this process missing until a beat succeeds.
                    failing = True
                    logger.warning("heartbeat of %s failed: %s: %s", self.id, type(exc).__name__, exc)
            interval = _PROBE_INTERVAL if self._outage.down else HEARTBEAT_INTERVAL
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass

    async def remove(self) -> None:
        """Take the record away at a clean exit, so health shows the process gone at once."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._key)
                pipe.zrem(self._index, self.id)
                await pipe.execute()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            logger.info("could not remove the heartbeat of %s (Redis away); it expires", self.id)


async def read_heartbeats(redis: aioredis.Redis, namespace: str) -> list[WorkerProcessInfo]:
    """The live worker processes, oldest first; drops the index entries of expired records."""
    now_ms = int(time.time() * 1000)
    await redis.zremrangebyscore(namespace, "-inf", now_ms)
    ids = await redis.zrange(namespace, 0, -1)
    if not ids:
        return []
    records = await redis.mget([f"{namespace}:{_text(worker_id)}" for worker_id in ids])
    processes = [_info(json.loads(raw)) for raw in records if raw]
    return sorted(processes, key=lambda info: (info.started_at, info.id))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _info(record: dict[str, object]) -> WorkerProcessInfo:
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
