"""Push that never naps, delayed-job precision, and lock renewal for long jobs."""

from __future__ import annotations

import asyncio
import operator
import statistics
import time
from functools import partial

import redis.asyncio as aioredis
from bullmq import Queue

from quickdapp.broker.job import StalledAttempt
from quickdapp.workers.engine import ActiveJob, Outcome
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


async def test_sparse_arrivals_start_at_once_with_a_delayed_job_pending(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    # The "push naps" case: a delayed job an hour out, jobs arriving seconds apart.
    recorder = Recorder()
    await queue.add("far-future", {}, {"delay": 3_600_000})
    await make_engine(process=returning_data(recorder))
    latencies, adds = [], []
    for n in range(4):
        await asyncio.sleep(2.5 if n else 0.5)
        began = time.time()
        job = await queue.add("sparse", {"n": n})
        added = time.time()
        job_id: str = job.id
        await wait_for(partial(operator.contains, recorder.jobs, job_id), 5, f"sparse job {n} started")
        started = dict(recorder.starts)[job_id]
        latencies.append((started - added) * 1000)
        adds.append((added - began) * 1000)
    # ms from the moment Queue.add returned (the job surely in Redis) to the start of process.
    # A nap (the case) is 700-1,500 ms and Redis's own tick 100 ms; every start here
    # is within a few ms (`make bench` measures it from the add's start, against its peers). Not
    # from the add's start: on a VM whose idle cores take 4-8 ms to wake, stock bullmq's add
    # itself, a few round trips after seconds idle, took 20-35 ms (`adds`), the test's producer
    # and not the worker. A machine whose cores are taken by other work can delay a start too.
    assert statistics.median(latencies) <= 20 and max(latencies) <= 100, (latencies, adds)
    assert await client.zcard("bull:jobs:delayed") == 1


async def test_a_burst_fills_the_idle_slots_in_a_few_rounds_of_the_marker_waiter(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    # One job per round of the waiter (BZPOPMIN, then a moveToActive) filled 100 idle slots
    # in 100 round trips, the last starting ~25 ms after the first here; each round now wakes
    # as many idle slots as jobs still wait, and they take theirs in parallel.
    recorder = Recorder()
    release = asyncio.Event()

    async def held(job: ActiveJob) -> Outcome:
        recorder.saw(job)
        await release.wait()
        return Outcome(value=None)

    await make_engine(process=held, concurrency=100)
    await asyncio.sleep(0.2)  # every slot idle, the waiter blocked on the marker
    await client.config_resetstat()
    await queue.addBulk([{"name": "burst", "data": {"n": n}} for n in range(100)])
    await wait_for(lambda: len(recorder.jobs) == 100, 5, "all 100 jobs started")
    rounds = (await client.info("commandstats")).get("cmdstat_bzpopmin", {}).get("calls", 0)
    release.set()
    assert rounds <= 10, rounds


async def test_delayed_jobs_start_on_a_timer_of_their_own(make_engine: MakeEngine, queue: Queue) -> None:
    recorder = Recorder()
    await make_engine(process=returning_data(recorder))
    await asyncio.sleep(0.2)  # idle, blocked on the marker
    jobs = [await queue.add("later", {"n": n}, {"delay": 300 + 137 * n}) for n in range(12)]
    await wait_for(lambda: len(recorder.jobs) == 12, 5, "all delayed jobs started")
    starts = dict(recorder.starts)
    lateness = sorted(starts[job.id] * 1000 - (job.timestamp + job.delay) for job in jobs)
    assert lateness[0] >= -1, lateness  # never early
    # Waking on Redis's 100 ms tick (hz 10) would make them 0-100 ms late, ~50 ms in the middle;
    # the engine's own timer makes them a few ms late (`make bench` measures the p99).
    assert statistics.median(lateness) <= 20 and lateness[-1] <= 90, lateness


async def test_lock_renewal_keeps_a_long_job_from_stalling(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    stalled: list[str] = []
    runs = 0

    async def long_job(job: ActiveJob) -> Outcome:
        nonlocal runs
        runs += 1
        await asyncio.sleep(1.8)  # 3x the lock duration
        return Outcome(value="done")

    async def on_stalled(captured: list[StalledAttempt]) -> None:
        stalled.extend(attempt.job_id for attempt in captured)

    common = {"lock_duration_ms": 600, "stalled_interval_ms": 300, "on_stalled": on_stalled}
    await make_engine(process=long_job, **common)
    # A second engine runs stalled checks too, and would take the job if its lock lapsed.
    await make_engine(process=long_job, **common)
    job = await queue.add("long", {})
    await wait_for(lambda: client.zscore("bull:jobs:completed", job.id), 6, "long job done")
    assert runs == 1
    assert stalled == []


async def test_blocking_handler_in_a_thread_keeps_its_lock(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    async def blocking(job: ActiveJob) -> Outcome:
        await asyncio.to_thread(time.sleep, 1.5)  # off the loop, as the design requires
        return Outcome(value="done")

    await make_engine(process=blocking, lock_duration_ms=500, stalled_interval_ms=250)
    job = await queue.add("blocking", {})
    await wait_for(lambda: client.zscore("bull:jobs:completed", job.id), 5, "job done")
    assert await client.hget(f"bull:jobs:{job.id}", "stc") in (None, "0")
