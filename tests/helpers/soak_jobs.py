"""Job types of the chaos soak (tests/soak/): each counts its executions in Redis, so the soak
can tell a duplicate execution (at-least-once delivery after a crash) from a lost job.

Jobs are kept in Redis after they finish (no removeOnComplete/removeOnFail), so the soak can
compare every job's final state in BullMQ with its audit rows.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from quickdapp.jobs.types import JobContext, JobData, JobDefinition

RUNS = "soak:runs"  # hash: job id -> executions started
FAILED_ONCE = "soak:failed-once"  # hash: job id -> 1 once a failOnce job has failed
KEEP = {"removeOnComplete": False, "removeOnFail": False}


class SoakData(JobData):
    ms: int = Field(default=0, ge=0, le=10_000)


async def _started(ctx: JobContext[SoakData]) -> None:
    await ctx.app.redis.hincrby(RUNS, ctx.job_id, 1)
    if ctx.data.ms:
        await asyncio.sleep(ctx.data.ms / 1000)


async def succeed(ctx: JobContext[SoakData]) -> dict[str, Any]:
    await _started(ctx)
    return {"ok": True}


async def fail_once(ctx: JobContext[SoakData]) -> dict[str, Any]:
    """Fails the first execution that gets this far, then succeeds (whatever the attempt number:
    an attempt lost to a crash does not count as its failure)."""
    await _started(ctx)
    if await ctx.app.redis.hsetnx(FAILED_ONCE, ctx.job_id, 1):
        raise RuntimeError("soak: failing once on purpose")
    return {"ok": True}


async def always_fail(ctx: JobContext[SoakData]) -> None:
    await _started(ctx)
    raise RuntimeError("soak: failing every time on purpose")


def _soak(name: str, handler: Any, attempts: int) -> JobDefinition[SoakData]:
    # A short fixed backoff: retries happen inside the soak's time, not minutes later.
    options = {**KEEP, "attempts": attempts, "backoff": {"type": "fixed", "delay": 200}}
    return JobDefinition(name=name, model=SoakData, priority=20, handler=handler, options=options)


JOBS = [
    _soak("soakFast", succeed, attempts=3),
    _soak("soakIO", succeed, attempts=3),
    _soak("soakFailOnce", fail_once, attempts=3),
    _soak("soakAlwaysFail", always_fail, attempts=2),
]
