"""Job types used only by the tests, loaded like any extension module (JOB_MODULES)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from pydantic import Field

from quickdapp.jobs.types import JobContext, JobData, JobDefinition


class SleepData(JobData):
    ms: int = Field(ge=0)


async def sleep_job(ctx: JobContext[SleepData]) -> dict[str, Any]:
    await asyncio.sleep(ctx.data.ms / 1000)
    return {"slept_ms": ctx.data.ms}


def blocking_sleep_job(ctx: JobContext[SleepData]) -> dict[str, Any]:
    time.sleep(ctx.data.ms / 1000)  # holds the thread, as a synchronous library would
    return {"slept_ms": ctx.data.ms}


class EchoData(JobData):
    value: Any = None


async def echo_job(ctx: JobContext[EchoData]) -> Any:
    return ctx.data.value


class FlakyData(JobData):
    failures: int = Field(ge=0)
    message: str = "flaky failure"


async def flaky_job(ctx: JobContext[FlakyData]) -> dict[str, Any]:
    """Fails its first `failures` attempts, then succeeds."""
    if ctx.attempt <= ctx.data.failures:
        raise RuntimeError(f"{ctx.data.message} (attempt {ctx.attempt})")
    return {"succeeded_on_attempt": ctx.attempt}


RUNS_KEY = "test:runs"


class RecordData(JobData):
    ms: int = Field(default=0, ge=0)


async def record_run(ctx: JobContext[RecordData]) -> dict[str, Any]:
    """Appends each execution (duplicates included) to a Redis list, then sleeps `ms`."""
    began = time.time()
    await asyncio.sleep(ctx.data.ms / 1000)
    run = {"job_id": ctx.job_id, "pid": os.getpid(), "began": began, "ended": time.time()}
    await ctx.app.redis.rpush(RUNS_KEY, json.dumps(run))
    return {"pid": run["pid"]}


JOBS = [
    JobDefinition(name="sleep", model=SleepData, priority=20, handler=sleep_job),
    JobDefinition(
        name="blockingSleep", model=SleepData, priority=20, handler=blocking_sleep_job, blocking=True
    ),
    JobDefinition(name="echo", model=EchoData, priority=20, handler=echo_job),
    JobDefinition(name="flaky", model=FlakyData, priority=20, handler=flaky_job),
    JobDefinition(name="recordRun", model=RecordData, priority=20, handler=record_run),
    JobDefinition(
        name="exclusiveRecordRun", model=RecordData, priority=20, handler=record_run, exclusive=True
    ),
]
