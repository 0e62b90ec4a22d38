"""Job types used only by the tests, loaded like any extension module (JOB_MODULES)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

from pydantic import Field
from redis.asyncio import Redis

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


async def not_json_job(ctx: JobContext[EchoData]) -> dict[str, Any]:
    """Returns what JSON cannot hold (NaN), as a computation gone wrong might."""
    return {"ratio": float("nan")}


RUNS_KEY = "test:runs"


async def recorded_runs(redis: Redis) -> list[dict[str, Any]]:
    """Every execution the recordRun job types made, duplicates included (for the tests)."""
    return [json.loads(item) for item in await redis.lrange(RUNS_KEY, 0, -1)]


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
    JobDefinition(name="notJson", model=EchoData, priority=20, handler=not_json_job),
    JobDefinition(name="recordRun", model=RecordData, priority=20, handler=record_run),
    JobDefinition(
        name="exclusiveRecordRun", model=RecordData, priority=20, handler=record_run, exclusive=True
    ),
]


async def pid_sleep_job(ctx: JobContext[SleepData]) -> dict[str, Any]:
    """Sleeps, then says which process ran it."""
    await asyncio.sleep(ctx.data.ms / 1000)
    return {"pid": os.getpid()}


def loop_blocking_sleep_job(ctx: JobContext[SleepData]) -> dict[str, Any]:
    """Wrongly declared async-safe: blocks the event loop, so lock renewal stops meanwhile."""
    time.sleep(ctx.data.ms / 1000)
    return {"slept_ms": ctx.data.ms}


async def _loop_blocking(ctx: JobContext[SleepData]) -> dict[str, Any]:
    return loop_blocking_sleep_job(ctx)


class CrashData(JobData):
    after_ms: int = Field(default=100, ge=0)


async def crash_job(ctx: JobContext[CrashData]) -> None:
    """Kills its own process, as a segfault or the OOM killer would."""
    await asyncio.sleep(ctx.data.after_ms / 1000)
    os.kill(os.getpid(), signal.SIGKILL)


JOBS += [
    JobDefinition(name="pidSleep", model=SleepData, priority=20, handler=pid_sleep_job),
    JobDefinition(name="loopBlockingSleep", model=SleepData, priority=20, handler=_loop_blocking),
    JobDefinition(name="crash", model=CrashData, priority=20, handler=crash_job),
]


class ReportData(JobData):
    steps: int = Field(default=3, ge=1, le=100)


async def report_job(ctx: JobContext[ReportData]) -> dict[str, Any]:
    """Reports its progress and a log line per step, as a long job would."""
    for step in range(1, ctx.data.steps + 1):
        await ctx.report.add_log(f"step {step} of {ctx.data.steps}")
        await ctx.report.update_progress(round(100 * step / ctx.data.steps))
    return {"steps": ctx.data.steps}


JOBS += [JobDefinition(name="report", model=ReportData, priority=20, handler=report_job)]
