"""Shared pieces of the engine tests: engines that are always closed, a bullmq Queue, a recorder."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from bullmq import Queue

from quickdapp.workers.engine import ActiveJob, Engine, Outcome

MakeEngine = Callable[..., Awaitable[Engine]]


@dataclass
class Recorder:
    """What `process` saw: each start (job id, wall time) and a count per job id."""

    starts: list[tuple[str, float]] = field(default_factory=list)
    jobs: dict[str, ActiveJob] = field(default_factory=dict)

    def saw(self, job: ActiveJob) -> None:
        self.starts.append((job.id, time.time()))
        self.jobs[job.id] = job

    def count(self, job_id: str) -> int:
        return sum(1 for seen, _ in self.starts if seen == job_id)


def returning_data(recorder: Recorder) -> Callable[[ActiveJob], Awaitable[Outcome]]:
    """A process function that records the start and returns the job's data."""

    async def process(job: ActiveJob) -> Outcome:
        recorder.saw(job)
        try:
            return Outcome(value=job.data())
        except ValueError as exc:
            return Outcome(error=exc, retry=False)

    return process


@pytest.fixture
async def make_engine(redis_url: str) -> AsyncIterator[MakeEngine]:
    """Start engines on the private Redis (defaults small for tests); all closed after the test."""
    engines: list[Engine] = []

    async def make(**overrides: Any) -> Engine:
        options: dict[str, Any] = {
            "redis_url": redis_url,
            "name": f"test-{len(engines) + 1}",
            "concurrency": 5,
            "lock_duration_ms": 5000,
            "stalled_interval_ms": 5000,
            "max_stalled_count": 1,
        }
        options.update(overrides)
        engine = Engine(**options)
        await engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close(5)


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[Queue]:
    """bullmq's own Queue (Python bullmq 3.4.4) on the private Redis: the producer side."""
    bull_queue = Queue("jobs", {"connection": redis_url})
    yield bull_queue
    await bull_queue.close()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain redis-py client to look at what the engine left in Redis."""
    redis_client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield redis_client
    await redis_client.aclose()


async def wait_for(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    """Call (and await, if it is a coroutine) `probe` until truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


async def state_counts(client: aioredis.Redis) -> dict[str, int]:
    """Job counts per BullMQ state, read straight from its keys."""
    return {
        "wait": await client.llen("bull:jobs:wait"),
        "active": await client.llen("bull:jobs:active"),
        "delayed": await client.zcard("bull:jobs:delayed"),
        "completed": await client.zcard("bull:jobs:completed"),
        "failed": await client.zcard("bull:jobs:failed"),
    }
