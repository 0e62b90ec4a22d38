"""The lock behind exclusive job types, as the attempt hook uses it, against the real Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from quickdapp.app.server_app import ServerApp
from quickdapp.attempts import Attempt, JobExecution, Skip
from quickdapp.exclusive import ExclusiveLock
from quickdapp.keys import exclusive_lock_key
from tests.helpers.waiting import eventually


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
    await hook.after(_ended(second))
    assert await app.redis.exists(exclusive_lock_key("t")) == 1
    await hook.after(_ended(first))
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
    await hook.after(_ended(running))


async def test_lock_of_a_dead_holder_expires_and_is_not_released_by_others(app: ServerApp) -> None:
    # A holder that died: its token is in Redis, nobody renews it.
    await app.redis.set(exclusive_lock_key("dead"), "their-token", px=300)
    hook = ExclusiveLock(app.redis, {"dead"}, 5_000)
    refused = _attempt("a", type="dead")
    assert isinstance(await hook.before(refused), Skip)
    await hook.after(_ended(refused))
    assert await app.redis.get(exclusive_lock_key("dead")) == "their-token"

    async def expired() -> bool:
        return not await app.redis.exists(exclusive_lock_key("dead"))

    await eventually(expired, 5, "the dead holder's lock to expire")
    held = _attempt("b", type="dead")
    assert await hook.before(held) is None
    await hook.after(_ended(held))
