"""The job types the benchmarks run, loaded like any extension module (JOB_MODULES=bench.jobs)."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from bench.stamps import record_start
from quickdapp.jobs.types import JobContext, JobData, JobDefinition


class EchoData(JobData):
    value: Any = None


async def echo_job(ctx: JobContext[EchoData]) -> Any:
    """A no-op: what the system costs per job."""
    return ctx.data.value


class SleepData(JobData):
    ms: int = Field(ge=0)


async def sleep_job(ctx: JobContext[SleepData]) -> dict[str, Any]:
    """Waits `ms` on the event loop, as a job waiting on I/O does."""
    await asyncio.sleep(ctx.data.ms / 1000)
    return {"slept_ms": ctx.data.ms}


async def stamp_job(ctx: JobContext[EchoData]) -> None:
    """A no-op that notes when it started (latency measurements: bench/stamps.py)."""
    record_start(ctx.job_id)


JOBS = [
    JobDefinition(name="echo", model=EchoData, priority=20, handler=echo_job),
    JobDefinition(name="sleep", model=SleepData, priority=20, handler=sleep_job),
    JobDefinition(name="stamp", model=EchoData, priority=20, handler=stamp_job),
]
