"""The dashboard's JSON API for the audit trail: history rows, per-type figures and a series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import HTTPException, Query
from pydantic import BaseModel

from quickdapp.audit import store
from quickdapp.audit.series import SeriesPoint, get_job_series
from quickdapp.audit.store import JobMetrics
from quickdapp.web.deps import Sessions, admin_router

router = admin_router("/api/audit")


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


@router.get("/history", response_model=AuditPage, summary="Audit rows, newest first")
async def audit_history(
    sessions: Sessions,
    type: str | None = None,
    status: Literal["completed", "failed"] | None = None,
    user_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AuditPage:
    page = await store.get_job_history(
        sessions,
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


class AuditMetrics(BaseModel):
    since: datetime
    until: datetime
    bucket_seconds: int
    types: list[JobMetrics]
    series: list[SeriesPoint]


@router.get("/metrics", response_model=AuditMetrics, summary="Per-type figures and a series")
async def audit_metrics(
    sessions: Sessions,
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
    return AuditMetrics(
        since=start,
        until=end,
        bucket_seconds=bucket_seconds,
        types=await store.get_job_metrics(sessions, since=start, until=end, type=type or None),
        series=await get_job_series(
            sessions, since=start, until=end, bucket_seconds=bucket_seconds, type=type or None
        ),
    )


def _aware(value: datetime | None) -> datetime | None:
    """Query times without a zone are taken as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
