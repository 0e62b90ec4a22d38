"""The dashboard's JSON API for the queue: overview, job lists and detail, and actions on jobs."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Header, HTTPException, Path, Query
from pydantic import BaseModel, Field, StrictInt

from quickdapp.errors import JobBatchError, PayloadTooLargeError, PermanentJobError
from quickdapp.keys import JobState
from quickdapp.limits import (
    MAX_BULK_JOBS,
    MAX_CLEAN_LIMIT,
    MAX_GRACE_MS,
    MAX_JOB_ID_LENGTH,
    MAX_JOB_TYPE_LENGTH,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    DelayMs,
    UserId,
)
from quickdapp.queue.inspection import LiveWorker
from quickdapp.queue.manager import CronJob, JobRequest, JobStateError
from quickdapp.redis_client import RedisHealth
from quickdapp.web.dashboard.views import JobDetail, JobPage, detail, summary
from quickdapp.web.deps import Inspection, Manager, Server, admin_router

logger = logging.getLogger(__name__)

# Finished jobs are most useful newest first; pending ones in the order they will run.
NEWEST_FIRST = frozenset({"completed", "failed"})
# A job id in a path: anything longer names no job.
JobId = Annotated[str, Path(min_length=1, max_length=MAX_JOB_ID_LENGTH)]

router = admin_router("/api")


class JobType(BaseModel):
    name: str
    priority: int
    description: str
    data_schema: dict[str, Any]


class Overview(BaseModel):
    queue: str
    counts: dict[JobState, int]
    paused: bool
    workers: list[LiveWorker]
    redis: RedisHealth
    warnings: list[str]
    schedulers: list[CronJob]
    job_types: list[JobType]


@router.get("/overview", response_model=Overview, summary="Counts per state, workers, schedulers")
async def overview(server: Server, manager: Manager, inspection: Inspection) -> Overview:
    health = await manager.get_health()
    up = health.redis.ok
    return Overview(
        queue=health.queue,
        counts=health.counts,
        paused=health.paused,
        workers=await inspection.live_workers() if up else [],
        redis=health.redis,
        warnings=health.warnings,
        schedulers=await manager.list_cron_jobs() if up else [],
        job_types=[
            JobType(
                name=d.name,
                priority=d.priority,
                description=d.description,
                data_schema=d.model.model_json_schema(),
            )
            for d in server.registry
        ],
    )


@router.get("/jobs", response_model=JobPage, summary="Jobs in one state, a page at a time")
async def list_jobs(
    inspection: Inspection,
    state: JobState,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> JobPage:
    start = (page - 1) * page_size
    jobs = await inspection.jobs(
        state, start, start + page_size - 1, oldest_first=state not in NEWEST_FIRST
    )
    return JobPage(
        state=state,
        total=await inspection.count(state),
        page=page,
        page_size=page_size,
        jobs=[summary(job, state) for job in jobs],
    )


@router.get("/jobs/{job_id}", response_model=JobDetail, summary="Every field of one job")
async def get_job(inspection: Inspection, job_id: JobId) -> JobDetail:
    job = await inspection.job(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return detail(job, await inspection.state(job_id), await inspection.logs(job_id))


class NewJob(BaseModel):
    """A job to add. Numbers are strict: `true`, "7" and 1e20 are refused, not coerced."""

    type: Annotated[str, Field(min_length=1, max_length=MAX_JOB_TYPE_LENGTH)]
    data: Any = None
    user_id: UserId | None = None
    delay_ms: DelayMs | None = None


class Submitted(BaseModel):
    id: str


@router.post(
    "/jobs",
    response_model=Submitted,
    status_code=201,
    summary=(
        "Validate and add a job (as QueueManager.submit_job); 422 and nothing added on bad data, "
        "413 when its data is larger than MAX_JOB_PAYLOAD_BYTES"
    ),
)
async def add_job(
    manager: Manager,
    body: NewJob,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=MAX_JOB_ID_LENGTH,
            description=(
                "Makes a retried call safe: the job's id; the same key within 24 h returns "
                "the same id and adds nothing"
            ),
        ),
    ] = None,
) -> Submitted:
    try:
        job_id = await manager.submit_job(
            body.type, body.data, body.user_id, delay=body.delay_ms, idempotency_key=idempotency_key
        )
    except PayloadTooLargeError as exc:
        raise HTTPException(413, str(exc)) from None
    except (PermanentJobError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    return Submitted(id=job_id)


class NewJobs(BaseModel):
    """Jobs to add at once; the request body is bounded as a single job's is."""

    jobs: Annotated[list[NewJob], Field(min_length=1, max_length=MAX_BULK_JOBS)]


class SubmittedJobs(BaseModel):
    ids: list[str]


@router.post(
    "/jobs/bulk",
    response_model=SubmittedJobs,
    status_code=201,
    summary=(
        f"Validate and add up to {MAX_BULK_JOBS} jobs, all or none (as QueueManager.submit_jobs); "
        "422 or 413 naming the first refused job, and nothing added"
    ),
)
async def add_jobs(manager: Manager, body: NewJobs) -> SubmittedJobs:
    requests = [JobRequest(job.type, job.data, job.user_id, job.delay_ms) for job in body.jobs]
    try:
        ids = await manager.submit_jobs(requests)
    except JobBatchError as exc:
        status = 413 if isinstance(exc.error, PayloadTooLargeError) else 422
        raise HTTPException(status, str(exc)) from None
    return SubmittedJobs(ids=ids)


class Done(BaseModel):
    ok: bool = True
    count: int | None = None


async def _act(what: str, job_id: str, action: Any) -> Done:
    """Run an action on one job: 404 for a missing job, 409 for one in the wrong state."""
    try:
        await action(job_id)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except JobStateError as exc:
        raise HTTPException(409, str(exc)) from None
    logger.info("dashboard: %s job %s", what, job_id)
    return Done()


@router.post("/jobs/{job_id}/retry", response_model=Done, summary="Retry one failed job")
async def retry_job(manager: Manager, job_id: JobId) -> Done:
    return await _act("retried", job_id, manager.retry_job)


@router.post("/jobs/{job_id}/promote", response_model=Done, summary="Run a delayed job now")
async def promote_job(manager: Manager, job_id: JobId) -> Done:
    return await _act("promoted", job_id, manager.promote_job)


@router.delete(
    "/jobs/{job_id}",
    response_model=Done,
    summary="Remove a job, whatever its data holds; 409 while a worker runs it",
)
async def remove_job(manager: Manager, job_id: JobId) -> Done:
    return await _act("removed", job_id, manager.remove_job)


@router.post("/retry-failed", response_model=Done, summary="Retry every failed job")
async def retry_failed(manager: Manager) -> Done:
    return Done(count=await manager.retry_failed())


class Clean(BaseModel):
    state: JobState
    grace_ms: Annotated[StrictInt, Field(ge=0, le=MAX_GRACE_MS)] = 0
    limit: Annotated[StrictInt, Field(ge=0, le=MAX_CLEAN_LIMIT)] = 0


@router.post("/clean", response_model=Done, summary="Remove the jobs of a state older than grace_ms")
async def clean(manager: Manager, body: Clean) -> Done:
    if body.state == "active":
        raise HTTPException(422, "active jobs cannot be cleaned: they are running")
    return Done(count=await manager.clean(body.state, body.grace_ms, body.limit))


@router.post("/pause", response_model=Done, summary="Pause the queue: workers take no new jobs")
async def pause(manager: Manager) -> Done:
    await manager.pause()
    return Done()


@router.post("/resume", response_model=Done, summary="Resume the queue")
async def resume(manager: Manager) -> Done:
    await manager.resume()
    return Done()
