"""The dashboard shows and removes any job whatever its content (poison jobs: data or options
that are not JSON, no name), and never takes one of the queue's own keys for a job."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.keys import QUEUE_OWN_SUFFIXES, job_key, queue_key
from tests.helpers.workers import StartWorker
from tests.web.conftest import API


async def _poison(app: ServerApp, **fields: str | None) -> str:
    """An echo job whose hash then gets `fields` written over it (None: the field deleted)."""
    job_id = await app.queue_manager.submit_job("echo", {"value": 1}, user_id=4)
    for field, value in fields.items():
        if value is None:
            await app.redis.hdel(job_key(job_id), field)
        else:
            await app.redis.hset(job_key(job_id), field, value)
    return job_id


async def _move(app: ServerApp, job_id: str, state: str) -> None:
    """Put the job in `state` by hand, as a worker that took it (or failed it) would."""
    await app.redis.zrem(queue_key("prioritized"), job_id)
    if state == "active":
        await app.redis.lpush(queue_key("active"), job_id)
    elif state == "failed":
        await app.redis.zadd(queue_key("failed"), {job_id: 1_700_000_000_000})
        await app.redis.hset(
            job_key(job_id), mapping={"failedReason": "boom", "finishedOn": "1700000000000"}
        )


async def _gone(app: ServerApp, job_id: str) -> bool:
    keys = [queue_key(state) for state in ("prioritized", "failed", "wait")]
    in_sets = [await app.redis.zscore(key, job_id) for key in keys[:2]]
    return not await app.redis.exists(job_key(job_id)) and in_sets == [None, None]


@pytest.mark.parametrize(
    ("fields", "unreadable"),
    [
        ({"data": "{not json"}, ["data"]),
        ({"opts": "{{{"}, ["opts"]),
        ({"data": "[" * 5_000}, ["data"]),  # deeper than the JSON reader goes
        ({"data": "{not json", "opts": "nope", "returnvalue": "{", "stacktrace": "["}, None),
        ({"name": None}, []),
        ({"name": None, "data": "\x00\xff"}, ["data"]),
        ({"attemptsMade": "many", "priority": "high", "timestamp": "99999999999999999999"}, []),
    ],
)
async def test_a_poison_job_is_shown_with_its_raw_text_and_can_be_removed(
    admin: httpx.AsyncClient, app: ServerApp, fields: dict[str, str | None], unreadable: list[str] | None
) -> None:
    job_id = await _poison(app, **fields)

    shown = await admin.get(f"{API}/jobs/{job_id}")
    assert shown.status_code == 200, shown.text
    job = shown.json()
    assert job["id"] == job_id and job["state"] == "prioritized"
    if unreadable is not None:
        assert job["unreadable"] == unreadable
    if "data" in job["unreadable"]:
        assert job["data"] == fields["data"]  # the raw text
    if "name" in fields:
        assert job["type"] == "(unknown)"
    listed = (await admin.get(f"{API}/jobs", params={"state": "prioritized"})).json()
    assert [row["id"] for row in listed["jobs"]] == [job_id]

    removed = await admin.delete(f"{API}/jobs/{job_id}")
    assert removed.status_code == 200, removed.text
    assert await _gone(app, job_id)
    assert (await admin.get(f"{API}/jobs/{job_id}")).status_code == 404


async def test_an_active_poison_job_is_listed_shown_and_removed(
    admin: httpx.AsyncClient, app: ServerApp
) -> None:
    """A worker took it and could not parse it: it sits in active without a lock."""
    job_id = await _poison(app, data="{not json", name=None)
    await _move(app, job_id, "active")

    active = await admin.get(f"{API}/jobs", params={"state": "active"})
    assert active.status_code == 200, active.text
    assert [(row["id"], row["type"]) for row in active.json()["jobs"]] == [(job_id, "(unknown)")]
    job = (await admin.get(f"{API}/jobs/{job_id}")).json()
    assert job["state"] == "active" and job["data"] == "{not json"

    assert (await admin.delete(f"{API}/jobs/{job_id}")).status_code == 200
    assert not await app.redis.exists(job_key(job_id))
    assert await app.redis.llen(queue_key("active")) == 0


async def test_the_failed_list_shows_a_nameless_job(admin: httpx.AsyncClient, app: ServerApp) -> None:
    job_id = await _poison(app, name=None, data="{not json")
    await _move(app, job_id, "failed")

    failed = await admin.get(f"{API}/jobs", params={"state": "failed"})
    assert failed.status_code == 200, failed.text
    [row] = failed.json()["jobs"]
    assert row["id"] == job_id and row["type"] == "(unknown)" and row["failed_reason"] == "boom"
    # It cannot run again as it is; it can be removed.
    assert (await admin.post(f"{API}/jobs/{job_id}/retry")).status_code == 409
    assert (await admin.delete(f"{API}/jobs/{job_id}")).status_code == 200
    assert await _gone(app, job_id)


async def test_a_running_job_is_not_removed(
    admin: httpx.AsyncClient, app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    job_id = await app.queue_manager.submit_job("sleep", {"ms": 3_000})
    for _ in range(100):
        if await app.queue_manager.inspect.state(job_id) == "active":
            break
        await asyncio.sleep(0.05)
    refused = await admin.delete(f"{API}/jobs/{job_id}")
    assert refused.status_code == 409 and "lock" in refused.text
    assert (await app.queue_manager.wait_until_finished(job_id, 10))["state"] == "completed"


async def test_ids_of_the_queues_own_keys_are_never_jobs(
    admin: httpx.AsyncClient, app: ServerApp
) -> None:
    manager = app.queue_manager
    await manager.schedule_cron_job("cleanupAuditLog", "0 3 * * *", {"retentionDays": 3}, key="nightly")
    job_id = await manager.submit_job("echo", {"value": 1})
    await app.redis.rpush(f"{job_key(job_id)}:logs", "a log line")
    await app.redis.set(queue_key("de:abc"), job_id)
    # Ids of its own keys pushed into a state list, as a buggy script might.
    await app.redis.lpush(queue_key("wait"), "meta", "events", "repeat:nightly")
    before = sorted(await app.redis.keys("bull:jobs:*"))

    suffixes = [
        *sorted(QUEUE_OWN_SUFFIXES),
        "repeat:nightly",
        f"{job_id}:logs",
        "de:abc",
        "quickdapp:workers",
    ]
    for suffix in suffixes:
        for method in ("GET", "DELETE"):
            response = await admin.request(method, f"{API}/jobs/{suffix}")
            assert response.status_code == 404, (method, suffix, response.text)
        assert (await admin.post(f"{API}/jobs/{suffix}/retry")).status_code == 404
    waiting = (await admin.get(f"{API}/jobs", params={"state": "waiting"})).json()
    assert waiting["jobs"] == []  # the three ids in the list name no job
    # Nothing of the queue's was removed or changed by the tries.
    assert sorted(await app.redis.keys("bull:jobs:*")) == before
    assert await app.redis.hget(queue_key("repeat:nightly"), "pattern") == "0 3 * * *"
