"""The dashboard's JSON API: overview, job lists and detail, actions, and the audit trail."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Security
from fastapi.security import HTTPBasic, HTTPBearer
from pydantic import BaseModel, Field

from quickdapp.app import ServerApp
from quickdapp.db import audit
from quickdapp.db.audit_series import get_job_series
from quickdapp.jobs.types import PermanentJobError
from quickdapp.queue.live_workers import live_workers
from quickdapp.queue.manager import JOB_STATES
from quickdapp.web.dashboard.jobs import JobDetail, JobPage, detail, summary

logger = logging.getLogger(__name__)

JobState = Literal["waiting", "prioritized", "active", "delayed", "completed", "failed", "paused"]
CleanState = Literal["waiting", "prioritized", "delayed", "completed", "failed", "paused"]
# Finished jobs are most useful newest first; pending ones in the order they will run.
NEWEST_FIRST = frozenset({"completed", "failed"})

# Enforced by AdminAuthMiddleware for every request; declared here so OpenAPI documents it.
router = APIRouter(
    prefix="/api",
    dependencies=[Security(HTTPBasic(auto_error=False)), Security(HTTPBearer(auto_error=False))],
)


def _server(request: Request) -> ServerApp:
    server: ServerApp = request.app.state.server
    return server


class Scheduler(BaseModel):
    key: str
    type: str
    pattern: str | None
    every: int | None = Field(None, description="milliseconds, for `every` schedulers")
    tz: str | None
    next_run: datetime | None
    data: Any


class JobType(BaseModel):
    name: str
    priority: int
    description: str
    data_schema: dict[str, Any]


class Worker(BaseModel):
    name: str
    addresses: list[str]
    age_seconds: int


class Overview(BaseModel):
    queue: str
    counts: dict[str, int]
    paused: bool
    workers: list[Worker]
    redis: dict[str, Any]
    warnings: list[str]
    schedulers: list[Scheduler]
    job_types: list[JobType]


@router.get("/overview", response_model=Overview, summary="Counts per state, workers, schedulers")
async def overview(request: Request) -> Overview:
    server = _server(request)
    health = await server.queue_manager.get_health()
    schedulers = await server.queue_manager.list_cron_jobs() if health.redis.ok else []
    workers = await live_workers(server.queue_manager.queue) if health.redis.ok else []
    return Overview(
        queue=health.queue,
        counts=health.counts,
        paused=health.paused,
        workers=[Worker(**vars(w)) for w in workers],
        redis={
            "ok": health.redis.ok,
            "version": health.redis.version,
            "maxmemory_policy": health.redis.maxmemory_policy,
            "error": health.redis.error,
        },
        warnings=health.warnings,
        schedulers=[Scheduler(**vars(s)) for s in schedulers],
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
    request: Request,
    state: JobState,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 20,
) -> JobPage:
    queue = _server(request).queue_manager.queue
    start = (page - 1) * page_size
    total = await queue.getJobCountByTypes(state)
    jobs = await queue.getJobs([state], start, start + page_size - 1, state not in NEWEST_FIRST)
    return JobPage(
        state=state,
        total=total,
        page=page,
        page_size=page_size,
        jobs=[summary(job, state) for job in jobs],
    )


@router.get("/jobs/{job_id}", response_model=JobDetail, summary="Every field of one job")
async def get_job(request: Request, job_id: str) -> JobDetail:
    queue = _server(request).queue_manager.queue
    job = await queue.getJob(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    state = await queue.getJobState(job_id)
    logs = await queue.getJobLogs(job_id)
    return detail(job, state, list(logs.get("logs", [])) if isinstance(logs, dict) else [])


class NewJob(BaseModel):
    type: str
    data: Any = None
    user_id: int | None = None
    delay_ms: Annotated[int | None, Field(ge=0)] = None


class Submitted(BaseModel):
    id: str


@router.post(
    "/jobs",
    response_model=Submitted,
    status_code=201,
    summary="Validate and add a job (as QueueManager.submit_job); 422 and nothing added on bad data",
)
async def add_job(request: Request, body: NewJob) -> Submitted:
    try:
        job_id = await _server(request).queue_manager.submit_job(
            body.type, body.data, body.user_id, delay=body.delay_ms
        )
    except (PermanentJobError, ValueError, TypeError) as exc:
        raise HTTPException(422, str(exc)) from None
    return Submitted(id=job_id)


async def _job_in(request: Request, job_id: str, *states: str) -> Any:
    queue = _server(request).queue_manager.queue
    job = await queue.getJob(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    state = await queue.getJobState(job_id)
    if state not in states:
        raise HTTPException(409, f"job {job_id!r} is {state}, not {' or '.join(states)}")
    return job


class Done(BaseModel):
    ok: bool = True
    count: int | None = None


@router.post("/jobs/{job_id}/retry", response_model=Done, summary="Retry one failed job")
async def retry_job(request: Request, job_id: str) -> Done:
    job = await _job_in(request, job_id, "failed")
    # Attempt counters are kept: the audit trail has one row per (job, attempt).
    await job.retry("failed")
    logger.info("dashboard: retried job %s", job_id)
    return Done()


@router.post("/jobs/{job_id}/promote", response_model=Done, summary="Run a delayed job now")
async def promote_job(request: Request, job_id: str) -> Done:
    job = await _job_in(request, job_id, "delayed")
    await job.promote()
    logger.info("dashboard: promoted job %s", job_id)
    return Done()


@router.delete("/jobs/{job_id}", response_model=Done, summary="Remove a job that is not active")
async def remove_job(request: Request, job_id: str) -> Done:
    await _job_in(request, job_id, *(s for s in JOB_STATES if s != "active"), "waiting-children")
    removed = await _server(request).queue_manager.queue.remove(job_id)
    if not removed:
        raise HTTPException(409, f"job {job_id!r} could not be removed (it may have just started)")
    logger.info("dashboard: removed job %s", job_id)
    return Done()


@router.post("/retry-failed", response_model=Done, summary="Retry every failed job")
async def retry_failed(request: Request) -> Done:
    queue = _server(request).queue_manager.queue
    count = await queue.getJobCountByTypes("failed")
    await queue.retryJobs({"state": "failed"})
    logger.info("dashboard: retried %d failed jobs", count)
    return Done(count=count)


class Clean(BaseModel):
    state: CleanState
    grace_ms: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=0)] = 0


@router.post("/clean", response_model=Done, summary="Remove the jobs of a state older than grace_ms")
async def clean(request: Request, body: Clean) -> Done:
    queue = _server(request).queue_manager.queue
    # BullMQ's clean script calls the waiting list 'wait'.
    state = "wait" if body.state == "waiting" else body.state
    removed = await queue.clean(body.grace_ms, body.limit, state)
    logger.info("dashboard: cleaned %d %s jobs", len(removed), body.state)
    return Done(count=len(removed))


@router.post("/pause", response_model=Done, summary="Pause the queue: workers take no new jobs")
async def pause(request: Request) -> Done:
    await _server(request).queue_manager.queue.pause()
    logger.info("dashboard: queue paused")
    return Done()


@router.post("/resume", response_model=Done, summary="Resume the queue")
async def resume(request: Request) -> Done:
    await _server(request).queue_manager.queue.resume()
    logger.info("dashboard: queue resumed")
    return Done()


class AuditRow(BaseModel):
    job_id: str
    attempt: int
    type: str
    user_id: int | None
    status: str
    data: Any
    result: Any
    error: str | None
    started_at: datetime
    completed_at: datetime
    duration_ms: int


class AuditPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AuditRow]


@router.get("/audit/history", response_model=AuditPage, summary="Audit rows, newest first")
async def audit_history(
    request: Request,
    type: str | None = None,
    status: Literal["completed", "failed"] | None = None,
    user_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AuditPage:
    page = await audit.get_job_history(
        _server(request).sessions,
        type=type or None,
        status=status,
        user_id=user_id,
        since=_aware(since),
        until=_aware(until),
        limit=limit,
        offset=offset,
    )
    rows = [AuditRow.model_validate(row, from_attributes=True) for row in page.items]
    return AuditPage(total=page.total, limit=page.limit, offset=page.offset, items=rows)


class TypeMetrics(BaseModel):
    type: str
    count: int
    completed: int
    failed: int
    success_rate: float
    average_ms: float
    p50_ms: float
    p95_ms: float


class Point(BaseModel):
    start: datetime
    completed: int
    failed: int
    average_ms: float


class AuditMetrics(BaseModel):
    since: datetime
    until: datetime
    bucket_seconds: int
    types: list[TypeMetrics]
    series: list[Point]


@router.get("/audit/metrics", response_model=AuditMetrics, summary="Per-type figures and a series")
async def audit_metrics(
    request: Request,
    type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    buckets: Annotated[int, Query(ge=1, le=200)] = 60,
) -> AuditMetrics:
    end = _aware(until) or datetime.now(UTC)
    start = _aware(since) or end - timedelta(hours=1)
    if start >= end:
        raise HTTPException(422, "since must be before until")
    bucket_seconds = max(1, -(-int((end - start).total_seconds()) // buckets))
    sessions = _server(request).sessions
    figures = await audit.get_job_metrics(sessions, since=start, until=end, type=type or None)
    series = await get_job_series(
        sessions, since=start, until=end, bucket_seconds=bucket_seconds, type=type or None
    )
    return AuditMetrics(
        since=start,
        until=end,
        bucket_seconds=bucket_seconds,
        types=[TypeMetrics(**vars(m), success_rate=m.success_rate) for m in figures],
        series=[Point(**vars(p)) for p in series],
    )


def _aware(value: datetime | None) -> datetime | None:
    """Query times without a zone are taken as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
