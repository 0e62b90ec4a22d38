"""Heartbeats: each worker process keeps a short-lived record in Redis of who it is and what it runs.

The records live at keys.HEARTBEATS (an index of process ids by expiry time) and
keys.heartbeat_key(id) (the JSON record, with a TTL). A process that dies stops beating; its
record expires after HEARTBEAT_TTL seconds and readers (queue/inspection.py) drop it from the
index.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime

import redis.asyncio as aioredis

from quickdapp.keys import HEARTBEATS, heartbeat_key
from quickdapp.workers.outage import OutageLog, is_connection_error

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 2.0  # seconds between records
HEARTBEAT_TTL = 10  # seconds a record outlives its writer
_PROBE_INTERVAL = 0.5  # seconds between tries while Redis is away


class Heartbeat:
    """Writes this process's record every HEARTBEAT_INTERVAL seconds until stopped."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        concurrency: int,
        active_job_ids: Callable[[], Collection[str]],
        outage: OutageLog,
    ) -> None:
        self._redis = redis
        self.id = f"{socket.gethostname()}:{os.getpid()}"
        self._key = heartbeat_key(self.id)
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
            pipe.zadd(HEARTBEATS, {self.id: expires_ms})
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
                pipe.zrem(HEARTBEATS, self.id)
                await pipe.execute()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            logger.info("could not remove the heartbeat of %s (Redis away); it expires", self.id)
