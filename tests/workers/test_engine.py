"""The engine on a real Redis with jobs added by bullmq's own Queue: the stock Worker's behaviours."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from bullmq import Queue

from quickdapp.broker.scripts import QueueScripts
from quickdapp.workers.engine import ActiveJob, Engine, Outcome
from tests.helpers.socket_writes import note_writes
from tests.workers.engine_helpers import (
    MakeEngine,
    Recorder,
    client,
    make_engine,
    queue,
    returning_data,
    state_counts,
    wait_for,
)

__all__ = ["client", "make_engine", "queue"]  # fixtures


async def test_jobs_from_bullmq_queue_run_exactly_once(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    recorder = Recorder()
    await queue.addBulk([{"name": "add", "data": {"n": n}} for n in range(300)])
    await make_engine(process=returning_data(recorder), concurrency=10)
    await wait_for(lambda: _completed(client, 300), 20, "300 completed")
    assert len(recorder.starts) == 300
    assert all(recorder.count(job_id) == 1 for job_id in recorder.jobs)
    job = await queue.getJob(next(iter(recorder.jobs)))
    assert job.returnvalue == recorder.jobs[job.id].data()
    assert (await state_counts(client))["active"] == 0


async def test_completion_fetches_the_next_job_in_the_same_call(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    await queue.pause()
    await queue.addBulk([{"name": "n", "data": {}} for _ in range(200)])
    await make_engine(process=returning_data(Recorder()), concurrency=1)
    await asyncio.sleep(0.2)
    await client.config_resetstat()
    await queue.resume()
    await wait_for(lambda: _completed(client, 200), 20, "200 completed")
    stats = await client.info("commandstats")
    evalsha = stats["cmdstat_evalsha"]["calls"]
    # One moveToFinished per job, which hands out the next; a few extra: the first
    # moveToActive, the last look, the stalled check, resume's own script.
    assert evalsha <= 200 + 10, evalsha


async def test_worker_name_is_stored_and_listed_as_node_does(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    recorder = Recorder()
    engine = await make_engine(process=returning_data(recorder), name="host:1:ab12")
    job = await queue.add("named", {})
    await wait_for(lambda: _completed(client, 1), 5, "job completed")
    assert await client.hget(f"bull:jobs:{job.id}", "pb") == "host:1:ab12"
    names = [entry["name"] for entry in await client.client_list()]
    expected = f"bull:{base64.b64encode(b'jobs').decode()}:w:host:1:ab12"
    assert engine.client_name == expected
    assert names.count(expected) == 1  # the blocking connection is named apart (":wb:")


async def test_retries_follow_exponential_backoff_then_fail(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    starts: list[float] = []

    async def failing(job: ActiveJob) -> Outcome:
        starts.append(time.monotonic())
        return Outcome(error=RuntimeError(f"attempt {len(starts)}"))

    await make_engine(process=failing)
    job = await queue.add("flaky", {}, {"attempts": 3, "backoff": {"type": "exponential", "delay": 300}})
    await wait_for(lambda: client.zscore("bull:jobs:failed", job.id), 10, "job failed")
    assert len(starts) == 3
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # bullmq: round(2 ** (attempt - 1) * delay): 300 ms, then 600 ms (+ small lateness)
    assert 0.29 <= gaps[0] <= 0.36, gaps
    assert 0.59 <= gaps[1] <= 0.66, gaps
    fields = await client.hgetall(f"bull:jobs:{job.id}")
    assert fields["atm"] == "3"
    assert fields["failedReason"] == "attempt 3"
    assert len(json.loads(fields["stacktrace"])) == 3


async def test_fixed_backoff_and_retry_without_backoff(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    starts: dict[str, list[float]] = {}

    async def failing_once(job: ActiveJob) -> Outcome:
        starts.setdefault(job.name or "", []).append(time.monotonic())
        if len(starts[job.name or ""]) == 1:
            return Outcome(error=RuntimeError("first try fails"))
        return Outcome(value="ok")

    await make_engine(process=failing_once)
    await queue.add("fixed", {}, {"attempts": 2, "backoff": 250})
    await queue.add("immediate", {}, {"attempts": 2})
    await wait_for(lambda: _completed(client, 2), 10, "both completed")
    fixed_gap = starts["fixed"][1] - starts["fixed"][0]
    immediate_gap = starts["immediate"][1] - starts["immediate"][0]
    assert 0.24 <= fixed_gap <= 0.31, fixed_gap
    assert immediate_gap < 0.05, immediate_gap


async def test_permanent_error_fails_at_once(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    calls = 0

    async def permanent(job: ActiveJob) -> Outcome:
        nonlocal calls
        calls += 1
        return Outcome(error=ValueError("bad input"), retry=False)

    await make_engine(process=permanent)
    job = await queue.add("bad", {}, {"attempts": 5, "backoff": 100})
    await wait_for(lambda: client.zscore("bull:jobs:failed", job.id), 5, "job failed")
    await asyncio.sleep(0.3)
    assert calls == 1
    assert await client.hget(f"bull:jobs:{job.id}", "failedReason") == "bad input"


async def test_deferred_failure_fails_without_running(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    recorder = Recorder()
    outcomes: list[Outcome] = []

    def extras(job: ActiveJob, outcome: Outcome) -> list[list[str]]:
        outcomes.append(outcome)
        return []

    await queue.pause()
    job = await queue.add("doomed", {}, {"attempts": 3})
    await client.hset(f"bull:jobs:{job.id}", "defa", "parent failed")
    await make_engine(process=returning_data(recorder), finish_extras=extras)
    await queue.resume()
    await wait_for(lambda: client.zscore("bull:jobs:failed", job.id), 5, "job failed")
    assert recorder.starts == []
    assert await client.hget(f"bull:jobs:{job.id}", "failedReason") == "parent failed"
    assert outcomes and outcomes[0].retry is False


async def test_malformed_jobs_reach_process_and_end_failed(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    recorder = Recorder()
    await queue.pause()
    unnamed = await queue.add("will-lose-its-name", {"ok": True})
    await client.hdel(f"bull:jobs:{unnamed.id}", "name")
    broken = await queue.add("broken", {})
    await client.hset(f"bull:jobs:{broken.id}", mapping={"data": "{not json", "opts": "[1,"})

    async def strict(job: ActiveJob) -> Outcome:
        recorder.saw(job)
        if job.name is None:
            return Outcome(error=ValueError("job has no name"), retry=False)
        try:
            return Outcome(value=job.data())
        except ValueError as exc:
            return Outcome(error=exc, retry=False)

    await make_engine(process=strict)
    await queue.resume()
    await wait_for(lambda: _failed(client, 2), 5, "both failed")
    assert set(recorder.jobs) == {unnamed.id, broken.id}
    assert (await state_counts(client))["active"] == 0


async def test_progress_and_logs(make_engine: MakeEngine, queue: Queue, client: aioredis.Redis) -> None:
    holder: list[ActiveJob] = []
    engine_box: list[Engine] = []

    async def reporting(job: ActiveJob) -> Outcome:
        holder.append(job)
        await engine_box[0].update_progress(job, {"done": 50})
        await engine_box[0].add_log(job, "first line")
        await engine_box[0].add_log(job, "second line")
        return Outcome(value=1)

    engine_box.append(await make_engine(process=reporting))
    job = await queue.add("reports", {}, {"keepLogs": 1})
    await wait_for(lambda: _completed(client, 1), 5, "job completed")
    assert json.loads(await client.hget(f"bull:jobs:{job.id}", "progress") or "") == {"done": 50}
    assert await client.lrange(f"bull:jobs:{job.id}:logs", 0, -1) == ["second line"]


async def test_close_waits_for_active_jobs_or_returns_their_ids(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    async def slow(job: ActiveJob) -> Outcome:
        await asyncio.sleep((job.data() or {}).get("seconds", 0))
        return Outcome(value="done")

    engine = await make_engine(process=slow)
    short = await queue.add("short", {"seconds": 0.3})
    await wait_for(lambda: _active(client, 1), 5, "short job active")
    assert engine.active_job_ids() == [short.id]
    assert await engine.close(5) == []
    assert await client.zscore("bull:jobs:completed", short.id) is not None

    engine = await make_engine(process=slow)
    long = await queue.add("long", {"seconds": 30})
    await wait_for(lambda: _active(client, 1), 5, "long job active")
    started = time.monotonic()
    assert await engine.close(0.3) == [long.id]
    assert time.monotonic() - started < 2
    assert await client.lrange("bull:jobs:active", 0, -1) == [long.id]  # left for a stalled check


async def test_close_of_an_idle_engine_runs_what_the_waiter_takes_as_it_unblocks(
    make_engine: MakeEngine, client: aioredis.Redis
) -> None:
    recorder = Recorder()
    engine = await make_engine(process=returning_data(recorder))
    await asyncio.sleep(0.2)  # idle: the marker waiter is blocked, a moveToActive behind it
    # A job in wait without a marker: nothing wakes the waiter but closing does.
    await client.hset("bull:jobs:unmarked", mapping={"name": "n", "data": "{}", "opts": "{}"})
    await client.lpush("bull:jobs:wait", "unmarked")
    started = time.monotonic()
    assert await engine.close(5) == []
    assert time.monotonic() - started < 2
    # The moveToActive ran when the close unblocked the wait: the job it took was run, not
    # left active without a worker until its lock lapsed.
    assert recorder.count("unmarked") == 1
    assert await client.zscore("bull:jobs:completed", "unmarked") is not None
    assert (await state_counts(client))["active"] == 0


async def test_jobs_still_start_after_a_script_flush_while_idle(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    recorder = Recorder()
    await make_engine(process=returning_data(recorder))
    await asyncio.sleep(0.2)  # idle: a moveToActive waits behind the marker wait
    await client.script_flush()
    first = await queue.add("first", {})
    await wait_for(lambda: recorder.count(first.id), 5, "the job added after the flush")
    await asyncio.sleep(0.2)  # idle again, on a connection that reloaded its scripts
    second = await queue.add("second", {})
    await wait_for(lambda: recorder.count(second.id), 5, "the next job")


async def test_a_marker_key_of_the_wrong_type_is_not_read_in_a_tight_loop(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    await client.set("bull:jobs:marker", "not a sorted set")
    with caplog.at_level(logging.ERROR, logger="quickdapp.workers.wakeups"):
        await make_engine(process=returning_data(recorder))
        await asyncio.sleep(1.5)
    assert 1 <= sum("BZPOPMIN" in r.message for r in caplog.records) <= 3
    await client.delete("bull:jobs:marker")
    job = await queue.add("after", {})
    await wait_for(lambda: recorder.count(job.id), 5, "a job once the key is repaired")


async def test_job_scheduler_keeps_producing_iterations(make_engine: MakeEngine, queue: Queue) -> None:
    recorder = Recorder()
    await make_engine(process=returning_data(recorder))
    await queue.upsertJobScheduler("tick", {"every": 500}, "tick", {"k": 1})
    await asyncio.sleep(2.4)
    ids = [job_id for job_id, _ in recorder.starts]
    assert len(set(ids)) >= 4, ids  # one per 500 ms, each advancing the scheduler
    assert all(job_id.startswith("repeat:tick:") for job_id in ids)
    assert all(recorder.count(job_id) == 1 for job_id in ids)


async def test_finish_extras_run_atomically_with_completion(
    make_engine: MakeEngine, queue: Queue, client: aioredis.Redis
) -> None:
    # The lead's audit hook in miniature: an entry written only while the job's lock is ours.
    guard = (
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
        "return redis.call('XADD', KEYS[2], '*', 'job', ARGV[2], 'attempt', ARGV[3])"
    )
    scripts = QueueScripts()
    engine_box: list[Any] = []

    async def process(job: ActiveJob) -> Outcome:
        if job.name == "loses-lock":
            await client.delete(f"bull:jobs:{job.id}:lock")
        return Outcome(value=job.name)

    def extras(job: ActiveJob, outcome: Outcome) -> list[tuple[str | int, ...]]:
        sha = engine_box[1]
        lock = scripts.job_key(job.id) + ":lock"
        return [("EVALSHA", sha, 2, lock, "audit", job.token, job.id, job.attempts_started)]

    engine = await make_engine(process=process, finish_extras=extras)
    engine_box.extend([engine, await engine.load_script(guard)])
    kept = await queue.add("keeps-lock", {})
    await wait_for(lambda: _completed(client, 1), 5, "job completed")
    entries: Any = await client.xrange("audit")
    assert [fields["job"] for _, fields in entries] == [kept.id]

    lost = await queue.add("loses-lock", {})
    await wait_for(lambda: _active_gone(client, lost.id), 5, "attempt finished")
    await asyncio.sleep(0.1)
    entries = await client.xrange("audit")
    assert len(entries) == 1  # no entry for the attempt without a lock
    assert await client.zscore("bull:jobs:completed", lost.id) is None  # nor a completion


async def _completed(client: aioredis.Redis, n: int) -> bool:
    return bool(await client.zcard("bull:jobs:completed") >= n)


async def _failed(client: aioredis.Redis, n: int) -> bool:
    return bool(await client.zcard("bull:jobs:failed") >= n)


async def _active(client: aioredis.Redis, n: int) -> bool:
    return bool(await client.llen("bull:jobs:active") >= n)


async def _active_gone(client: aioredis.Redis, job_id: str) -> bool:
    lock = await client.exists(f"bull:jobs:{job_id}:lock")
    return not lock and bool(await client.hget(f"bull:jobs:{job_id}", "processedOn"))


async def test_a_job_taken_by_the_marker_waiter_starts_before_its_next_wait_is_written(
    make_engine: MakeEngine, queue: Queue
) -> None:
    # That write used to come first: ~0.1-0.2 ms on the way of every job added to an idle
    # queue (bench: latency at 100 jobs/s).
    waits_written: list[bytes] = []
    written_at_start: list[int] = []

    async def process(job: ActiveJob) -> Outcome:
        written_at_start.append(len(waits_written))
        return Outcome(value=None)

    engine = await make_engine(process=process, concurrency=2)
    await asyncio.sleep(0.2)  # idle: the waiter's BZPOPMIN is out
    assert engine._wakeups is not None

    def noting(data: bytes) -> None:
        if b"BZPOPMIN" in data:
            waits_written.append(data)

    note_writes(engine._wakeups._bconn, noting)

    async def one_job(n: int) -> None:
        await asyncio.sleep(0.1)  # idle again
        written_before = len(waits_written)
        await queue.add("n", {})
        await wait_for(lambda: len(written_at_start) == n + 1, 5, f"job {n + 1} started")
        assert written_at_start[n] == written_before  # no new wait written before it started
        await wait_for(lambda: len(waits_written) > written_before, 5, "the next wait")

    for n in range(3):
        await one_job(n)
