"""The exclusive lock (the attempt hook) against the real Redis, and exclusive types on a schedule."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.attempts import Attempt, JobExecution, Skip
from quickdapp.audit.history import get_job_history
from quickdapp.db.schema import WorkerJob
from quickdapp.exclusive import ExclusiveLock
from quickdapp.keys import exclusive_lock_key
from tests.helpers.jobs import recorded_runs
from tests.helpers.queue import pending_counts
from tests.helpers.waiting import audit_stored, eventually
from tests.helpers.workers import StartWorker


def _attempt(job_id: str, type: str = "t") -> Attempt:
    return Attempt(job_id, type, 1, None, {}, datetime.now(UTC))


def _ended(attempt: Attempt) -> JobExecution:
    now = datetime.now(UTC)
    return JobExecution(attempt.job_id, 1, attempt.type, None, {}, "completed", now, now)


async def test_lock_is_held_once_and_released_at_the_end(app: ServerApp) -> None:
    hook = ExclusiveLock(app.redis, {"t"}, 5_000)
    first, second = _attempt("a"), _attempt("b")
    assert await hook.before(first) is None
    skipped = await hook.before(second)
    assert isinstance(skipped, Skip) and skipped.result["skipped"] is True
    # The refused attempt must not release the lock it never had.
    await hook.after(_ended(second), True)
    assert await app.redis.exists(exclusive_lock_key("t")) == 1
    await hook.after(_ended(first), True)
    assert await app.redis.exists(exclusive_lock_key("t")) == 0
    assert await hook.before(_attempt("c")) is None


async def test_types_not_declared_exclusive_take_no_lock(app: ServerApp) -> None:
    hook = ExclusiveLock(app.redis, {"t"}, 5_000)
    assert await hook.before(_attempt("a", type="other")) is None
    assert await hook.before(_attempt("b", type="other")) is None
    assert await app.redis.exists(exclusive_lock_key("other")) == 0


async def test_lock_is_renewed_while_the_run_outlasts_its_ttl(app: ServerApp) -> None:
    hook = ExclusiveLock(app.redis, {"slow"}, 300)
    running = _attempt("a", type="slow")
    assert await hook.before(running) is None
    await asyncio.sleep(1.0)  # time passing is the point: more than three times the TTL
    assert isinstance(await hook.before(_attempt("b", type="slow")), Skip)
    assert 0 < await app.redis.pttl(exclusive_lock_key("slow")) <= 300
    await hook.after(_ended(running), True)


async def test_lock_of_a_dead_holder_expires_and_is_not_released_by_others(app: ServerApp) -> None:
    # A holder that died: its token is in Redis, nobody renews it.
    await app.redis.set(exclusive_lock_key("dead"), "their-token", px=300)
    hook = ExclusiveLock(app.redis, {"dead"}, 5_000)
    refused = _attempt("a", type="dead")
    assert isinstance(await hook.before(refused), Skip)
    await hook.after(_ended(refused), True)
    assert await app.redis.get(exclusive_lock_key("dead")) == "their-token"

    async def expired() -> bool:
        return not await app.redis.exists(exclusive_lock_key("dead"))

    await eventually(expired, 5, "the dead holder's lock to expire")
    held = _attempt("b", type="dead")
    assert await hook.before(held) is None
    await hook.after(_ended(held), True)


@pytest.mark.parametrize("job_type", ["exclusiveRecordRun", "recordRun"])
async def test_exclusive_type_never_overlaps_its_previous_run(
    app: ServerApp, start_worker: StartWorker, job_type: str
) -> None:
    """A 2.5 s run every second: the exclusive type skips the overlapping runs, the other not."""
    manager = app.queue_manager
    await start_worker(worker_queue_concurrency=3)
    await manager.schedule_cron_job(job_type, "* * * * * *", {"ms": 2500}, "slow")

    async def outcome() -> tuple[list[dict[str, Any]], int, list[WorkerJob], list[WorkerJob]]:
        """The runs in start order, how many began before the previous one ended, the audit
        rows, and those of skipped runs."""
        executed = sorted(await recorded_runs(app.redis), key=lambda run: run["began"])
        overlaps = sum(b["began"] < a["ended"] for a, b in itertools.pairwise(executed))
        rows = (await get_job_history(app.sessions, type=job_type, limit=100)).items
        skipped = [row for row in rows if isinstance(row.result, dict) and row.result.get("skipped")]
        return executed, overlaps, rows, skipped

    async def runs_met() -> bool:
        """Enough runs that met a previous one still going (however slow the machine)."""
        executed, overlaps, _, skipped = await outcome()
        if job_type == "exclusiveRecordRun":
            return len(executed) >= 2 and len(skipped) >= 2
        return overlaps >= 2

    await eventually(runs_met, 45, "runs that meet a previous one still going", interval=0.25)
    await manager.remove_cron_job("slow")

    async def idle() -> bool:
        return (await pending_counts(manager))["active"] == 0

    await eventually(idle, 15, "the last runs to finish")
    await audit_stored(app.redis)

    executed, overlaps, rows, skipped = await outcome()
    assert all(row.status == "completed" for row in rows)
    if job_type == "exclusiveRecordRun":
        assert overlaps == 0, executed
        assert len(executed) >= 2
        assert len(skipped) >= 2
        assert len(skipped) + len(executed) == len(rows)
        assert (skipped[0].result or {})["reason"] == "a previous exclusiveRecordRun run is still going"
    else:
        assert overlaps >= 2 and skipped == []
