"""Jobs added over the pipelined connection: stored as bullmq's `Queue.add` stores them, one at a
time or in an all-or-none batch (`submit_jobs`)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from bullmq import Queue

from quickdapp.app.server_app import ServerApp
from quickdapp.broker.connection import BrokerConnectionError
from quickdapp.config import Settings
from quickdapp.errors import JobBatchError, JobValidationError, PayloadTooLargeError
from quickdapp.jobs.registry import JobRegistry
from quickdapp.keys import QUEUE_NAME
from quickdapp.limits import MAX_BULK_JOBS
from quickdapp.queue.adding import JobAdder, NewJob
from quickdapp.queue.manager import JobRequest, QueueManager
from tests.helpers.queue import pending_counts
from tests.helpers.workers import StartWorker

# Fields that differ between two adds of the same job by nature (its creation time).
_UNLIKE = {"timestamp"}


async def _stored(app: ServerApp, job_id: str) -> dict[str, Any]:
    fields: dict[str, str] = await app.redis.hgetall(f"bull:{QUEUE_NAME}:{job_id}")  # type: ignore[assignment]
    stored: dict[str, Any] = {key: value for key, value in fields.items() if key not in _UNLIKE}
    stored["opts"] = json.loads(stored["opts"])
    return stored


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"jobId": "j1", "attempts": 3, "priority": 20, "removeOnComplete": {"count": 100}},
        {"jobId": "j1", "delay": 60_000, "backoff": {"type": "exponential", "delay": 2_000}},
        {"jobId": "j1", "attempts": 7, "backoff": 1_500, "removeOnFail": True},
        {"jobId": "j1", "priority": 3, "deduplication": {"id": "d1", "ttl": 60_000}},
    ],
    ids=["no-options", "prioritized", "delayed", "standard-fixed-backoff", "deduplicated"],
)
async def test_a_job_is_stored_as_bullmq_queue_add_stores_it(
    app: ServerApp, options: dict[str, Any]
) -> None:
    adder = JobAdder(app.settings.redis_url)
    theirs = Queue(QUEUE_NAME, {"connection": app.settings.redis_url})
    data = {"userId": 7, "data": {"value": "hi"}}
    try:
        ours = await adder.add(NewJob("echo", json.dumps(data, separators=(",", ":")), options))
        stored = await _stored(app, ours)
        await app.redis.delete(f"bull:{QUEUE_NAME}:{ours}", f"bull:{QUEUE_NAME}:de:d1")
        job = await theirs.add("echo", data, options)
    finally:
        await theirs.close()
        await adder.close()
    assert await _stored(app, str(job.id)) == stored


async def test_a_batch_is_added_whole_in_order_and_runs(
    app: ServerApp, start_worker: StartWorker
) -> None:
    requests = [JobRequest("echo", {"value": str(i)}, user_id=i) for i in range(50)]
    requests.append(JobRequest("echo", {"value": "later"}, delay=60_000))
    ids = await app.queue_manager.submit_jobs(requests)
    assert len(ids) == len(set(ids)) == 51
    for i in (0, 49):
        job = await app.queue_manager.inspect.job(ids[i])
        assert job is not None and job.data == {"userId": i, "data": {"value": str(i)}}
    assert await app.queue_manager.inspect.state(ids[50]) == "delayed"
    await start_worker(concurrency=10)
    for job_id in ids[:50]:
        outcome = await app.queue_manager.wait_until_finished(job_id, timeout=30)
        assert outcome["state"] == "completed"


async def test_one_bad_job_refuses_the_whole_batch_naming_it(app: ServerApp) -> None:
    requests = [JobRequest("echo", {}), JobRequest("echo", {}), JobRequest("cleanupAuditLog", {})]
    with pytest.raises(JobBatchError, match=r"^jobs\[2\]: invalid data for job type") as caught:
        await app.queue_manager.submit_jobs(requests)
    assert caught.value.index == 2 and isinstance(caught.value.error, JobValidationError)
    assert sum((await pending_counts(app.queue_manager)).values()) == 0


async def test_a_batch_names_an_oversized_job(app: ServerApp) -> None:
    limit = app.settings.max_job_payload_bytes
    requests = [JobRequest("echo", {}), JobRequest("echo", {"value": "x" * limit})]
    with pytest.raises(JobBatchError, match=r"^jobs\[1\]: job data is") as caught:
        await app.queue_manager.submit_jobs(requests)
    assert isinstance(caught.value.error, PayloadTooLargeError)
    assert sum((await pending_counts(app.queue_manager)).values()) == 0


@pytest.mark.parametrize("size", [0, MAX_BULK_JOBS + 1])
async def test_a_batch_size_out_of_bounds_is_refused(app: ServerApp, size: int) -> None:
    with pytest.raises(ValueError, match=rf"submit 1\.\.{MAX_BULK_JOBS} jobs at once, got {size}"):
        await app.queue_manager.submit_jobs([JobRequest("echo", {})] * size)
    assert sum((await pending_counts(app.queue_manager)).values()) == 0


async def test_repeated_idempotency_keys_in_a_batch_enqueue_once(app: ServerApp) -> None:
    requests = [JobRequest("echo", {}, idempotency_key="one-key")] * 3 + [JobRequest("echo", {})]
    ids = await app.queue_manager.submit_jobs(requests)
    assert ids[:3] == ["one-key"] * 3 and ids[3] != "one-key"
    assert sum((await pending_counts(app.queue_manager)).values()) == 2


@pytest.mark.parametrize("notice", [True, False], ids=["loss-noticed", "loss-unnoticed"])
async def test_a_submit_after_redis_dropped_the_connection_goes_through_once(
    app: ServerApp, notice: bool
) -> None:
    """The producer connection reconnects, whether or not it noticed the drop before the
    next submit; the submits after it each add their job once."""
    first = await app.queue_manager.submit_job("echo", {})
    await app.redis.client_kill_filter(_type="normal", skipme=True)
    if notice:
        await asyncio.sleep(0.2)
    second = await app.queue_manager.submit_job("echo", {})
    await app.redis.client_kill_filter(_type="normal", skipme=True)
    ids = await app.queue_manager.submit_jobs([JobRequest("echo", {})] * 3)
    assert len({first, second, *ids}) == 5
    assert sum((await pending_counts(app.queue_manager)).values()) == 5


async def test_submit_without_redis_is_a_connection_error(
    settings: Settings, registry: JobRegistry
) -> None:
    dead = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    manager = QueueManager(dead, registry)
    try:
        with pytest.raises(BrokerConnectionError, match="cannot connect to Redis at 127.0.0.1:1"):
            await manager.submit_job("echo", {})
    finally:
        await manager.close()
