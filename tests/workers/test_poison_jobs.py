"""Jobs in Redis that cannot be read (written by another producer or a buggy script) fail once,
with a reason that says what is wrong, get their audit row, and never loop."""

from __future__ import annotations

import json

import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.attempts import UNKNOWN_TYPE
from quickdapp.audit.history import get_job_history
from quickdapp.keys import job_key
from tests.helpers.waiting import audit_stored
from tests.helpers.workers import StartWorker


async def _corrupt(app: ServerApp, job_id: str, **fields: str) -> None:
    """Overwrite fields of a paused queue's waiting job, as a buggy producer would."""
    for name, value in fields.items():
        await app.redis.hset(job_key(job_id), name, value)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"data": "{not json"}, "cannot be read"),
        ({"opts": "[1, 2"}, "cannot be read"),
        ({"data": json.dumps({"retentionDays": 5})}, "{userId, data} form"),
        ({"data": json.dumps([1, 2, 3])}, "{userId, data} form"),
        ({"data": json.dumps({"userId": True, "data": {"retentionDays": 5}})}, "userId must be"),
    ],
)
async def test_an_unreadable_job_fails_once_with_its_reason_and_is_audited(
    app: ServerApp, start_worker: StartWorker, fields: dict[str, str], reason: str
) -> None:
    manager = app.queue_manager
    await manager.pause()
    job_id = await manager.submit_job("cleanupAuditLog", {"retentionDays": 5}, attempts=3)
    await _corrupt(app, job_id, **fields)
    await manager.resume()
    await start_worker()

    outcome = await manager.wait_until_finished(job_id, timeout=10)
    assert outcome["state"] == "failed" and reason in outcome["failedReason"]
    # Read raw: bullmq's own Job cannot parse such a job.
    assert await app.redis.hget(job_key(job_id), "atm") == "1", "it is not retried"
    await audit_stored(app.redis)
    [row] = (await get_job_history(app.sessions)).items
    assert (row.job_id, row.status, row.type, row.attempt) == (job_id, "failed", "cleanupAuditLog", 1)
    assert reason in (row.error or "")


async def test_a_job_without_a_name_is_audited_as_unknown(
    app: ServerApp, start_worker: StartWorker
) -> None:
    manager = app.queue_manager
    await manager.pause()
    job_id = await manager.submit_job("echo", {"value": 1})
    await app.redis.hdel(job_key(job_id), "name")
    await manager.resume()
    await start_worker()

    outcome = await manager.wait_until_finished(job_id, timeout=10)
    assert outcome["state"] == "failed" and "has no name" in outcome["failedReason"]
    await audit_stored(app.redis)
    [row] = (await get_job_history(app.sessions)).items
    assert (row.type, row.status, row.data) == (UNKNOWN_TYPE, "failed", {"value": 1})
