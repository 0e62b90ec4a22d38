"""A killed worker's jobs, a Redis restart mid-run, and 20,000 jobs at 2 engines x 50."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from bullmq import Queue

from quickdapp.broker.connection import Connection
from quickdapp.broker.job import StalledAttempt
from quickdapp.workers.engine import ActiveJob, Outcome
from tests.helpers.paths import ROOT
from tests.helpers.redis_server import RedisServer, free_port
from tests.workers.engine_helpers import (
    MakeEngine,
    Recorder,
    client,
    make_engine,
    queue,
    returning_data,
    wait_for,
)

__all__ = ["client", "make_engine", "queue"]  # fixtures


async def test_killed_engine_jobs_are_recovered_by_another_stalled_check(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis, redis_url: str
) -> None:
    child = subprocess.Popen([sys.executable, "-m", "tests.workers.engine_child", redis_url], cwd=ROOT)
    try:
        job = await queue.add("orphan", {"n": 1})
        await wait_for(lambda: client.lrange("child:started", 0, -1), 10, "child took the job")
    finally:
        child.kill()
        child.wait(10)
    stalled: list[StalledAttempt] = []

    async def on_stalled(captured: list[StalledAttempt]) -> None:
        stalled.extend(captured)

    recorder = Recorder()
    await make_engine(
        process=returning_data(recorder),
        stalled_interval_ms=300,
        on_stalled=on_stalled,
        record_stalled_in="test:stalls",
    )
    await wait_for(lambda: client.zscore("bull:jobs:completed", job.id), 5, "job recovered")
    assert [(a.job_id, a.attempt, a.stalls) for a in stalled] == [(job.id, 1, 1)], "the first"
    assert stalled[0].name == "orphan" and stalled[0].raw_data == '{"n":1}'
    assert stalled[0].processed_on_ms and stalled[0].processed_on_ms <= stalled[0].at_ms
    assert recorder.count(job.id) == 1
    assert await client.hget(f"bull:jobs:{job.id}", "stc") == "1"
    # The same capture was added to the stream in the check's own transaction.
    entries = await client.xrange("test:stalls")
    assert [StalledAttempt.from_json((fields or {})["e"]) for _, fields in entries or []] == stalled


@pytest.fixture
def restartable_redis(tmp_path: Path, private_redis: RedisServer) -> Iterator[RedisServer]:
    """A second private server with an fsync-always AOF, so a SIGKILL loses nothing."""
    server = RedisServer(free_port(exclude=(private_redis.port,)), tmp_path, persistent=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def restart_queue(restartable_redis: RedisServer) -> AsyncIterator[Queue]:
    bull_queue = Queue("jobs", {"connection": restartable_redis.url})
    yield bull_queue
    await bull_queue.close()


async def test_engine_survives_a_redis_restart(
    make_engine: MakeEngine, restartable_redis: RedisServer, restart_queue: Queue
) -> None:
    total = 1500
    events: list[str] = []

    async def on_lost(exc: BaseException) -> None:
        events.append("lost")

    async def on_restored() -> None:
        events.append("restored")

    async def slowish(job: ActiveJob) -> Outcome:
        await asyncio.sleep(0.01)
        return Outcome(value=job.id)

    for start in range(0, total, 500):
        await restart_queue.addBulk([{"name": "r", "data": {}} for _ in range(start, start + 500)])
    await restart_queue.close()
    await make_engine(
        redis_url=restartable_redis.url,
        process=slowish,
        concurrency=20,
        lock_duration_ms=1000,
        stalled_interval_ms=500,
        on_lost=on_lost,
        on_restored=on_restored,
    )
    probe = Connection(restartable_redis.url)
    try:
        await wait_for(lambda: _count(probe, "completed", total // 3), 20, "a third done")
        restartable_redis.kill()
        await asyncio.sleep(1.0)
        restartable_redis.start()
        await wait_for(lambda: _count(probe, "completed", total), 60, "all done after restart")
        assert await probe.execute("LLEN", "bull:jobs:active") == 0
        assert await probe.execute("LLEN", "bull:jobs:wait") == 0
    finally:
        await probe.close()
    assert events == ["lost", "restored"]


async def _count(conn: Connection, state: str, n: int) -> bool:
    try:
        return bool(await conn.execute("ZCARD", f"bull:jobs:{state}") >= n)
    except ConnectionError:
        return False


async def test_20000_jobs_at_2_engines_x_50_complete_exactly_once(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis, redis_url: str
) -> None:
    total = 20_000
    counter = Connection(redis_url)

    async def count_run(job: ActiveJob) -> Outcome:
        await counter.execute("HINCRBY", "runs", job.id, 1)
        return Outcome(value=None)

    await queue.pause()
    for start in range(0, total, 1000):
        await queue.addBulk([{"name": "x", "data": {}} for _ in range(start, start + 1000)])
    await make_engine(process=count_run, concurrency=50)
    await make_engine(process=count_run, concurrency=50)
    await queue.resume()
    try:
        await wait_for(lambda: _done(client, total), 90, f"{total} completed")
        runs = await client.hgetall("runs")
        assert len(runs) == total
        assert set(runs.values()) == {"1"}
        counts = await queue.getJobCounts("completed", "active", "wait", "failed")
        assert counts == {"completed": total, "active": 0, "wait": 0, "failed": 0}
    finally:
        await counter.close()


async def _done(client: aioredis.Redis, n: int) -> bool:
    return bool(await client.zcard("bull:jobs:completed") >= n)
