"""The dashboard's JSON API for the audit trail: history rows, per-type figures and a series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import HTTPException, Query
from pydantic import BaseModel

from quickdapp.audit.history import (
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_USER_ID,
    TOTAL_CAP,
    Cursor,
    get_job_history,
)
from quickdapp.audit.job_metrics import JobMetrics, get_job_metrics
from quickdapp.audit.series import SeriesPoint, get_job_series
from quickdapp.audit.times import EPOCH, LATEST
from quickdapp.web.deps import Sessions, admin_router

router = admin_router("/api/audit")

# Chart bars of a readable size: the smallest of these at least (window / buckets) long.
_BUCKET_SIZES = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200]
_DAY = 86400


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
    total_exact: bool
    limit: int
    offset: int
    older: str | None
    newer: str | None
    items: list[AuditRow]


@router.get(
    "/history",
    response_model=AuditPage,
    summary="Audit rows, newest first",
    description=(
        "Page with cursors: `older` of a page, passed as `before`, gives the next older page; "
        "`newer`, passed as `after`, the next newer one. They cost the same at any depth. "
        f"`offset` (at most {MAX_OFFSET}) is for shallow pages only. `total` counts matching "
        f"rows up to {TOTAL_CAP}; past that `total_exact` is false and `total` means "
        f'"{TOTAL_CAP:,}+".'
    ),
)
async def audit_history(
    sessions: Sessions,
    type: Annotated[str | None, Query(max_length=100)] = None,
    status: Literal["completed", "failed"] | None = None,
    user_id: Annotated[int | None, Query(ge=0, le=MAX_USER_ID)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    before: Annotated[str | None, Query(max_length=40, description="cursor: rows older than it")] = None,
    after: Annotated[str | None, Query(max_length=40, description="cursor: rows newer than it")] = None,
) -> AuditPage:
    try:
        page = await get_job_history(
            sessions,
            type=type or None,
            status=status,
            user_id=user_id,
            since=_aware(since),
            until=_aware(until),
            limit=limit,
            offset=offset,
            before=Cursor.parse(before) if before else None,
            after=Cursor.parse(after) if after else None,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return AuditPage(
        total=page.total,
        total_exact=page.total_exact,
        limit=page.limit,
        offset=page.offset,
        older=str(page.older) if page.older else None,
        newer=str(page.newer) if page.newer else None,
        items=[AuditRow.model_validate(row, from_attributes=True) for row in page.items],
    )


class AuditMetrics(BaseModel):
    since: datetime
    until: datetime
    bucket_seconds: int
    types: list[JobMetrics]
    series: list[SeriesPoint]


@router.get(
    "/metrics",
    response_model=AuditMetrics,
    summary="Per-type figures and a series",
    description=(
        "Counts, success rate and mean duration are exact. p50/p95 are exact when the window "
        "holds no whole clock hour; longer windows take them from hourly duration histograms "
        "(8 log-scale bins per doubling), within 4.4 % of the exact value "
        "(`exact_percentiles` false). The series has about `buckets` bars (at most 10 % more) "
        "of a round size."
    ),
)
async def audit_metrics(
    sessions: Sessions,
    type: Annotated[str | None, Query(max_length=100)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    buckets: Annotated[int, Query(ge=1, le=200)] = 60,
) -> AuditMetrics:
    end = _aware(until) or datetime.now(UTC)
    if not EPOCH + timedelta(hours=1) <= end < LATEST:
        raise HTTPException(422, "until must be between 1970 and 9000")
    start = _aware(since) or end - timedelta(hours=1)
    if start >= end:
        raise HTTPException(422, "since must be before until")
    bucket_seconds = _bucket_size(end - start, buckets)
    try:
        return AuditMetrics(
            since=start,
            until=end,
            bucket_seconds=bucket_seconds,
            types=await get_job_metrics(sessions, since=start, until=end, type=type or None),
            series=await get_job_series(
                sessions, since=start, until=end, bucket_seconds=bucket_seconds, type=type or None
            ),
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def _bucket_size(window: timedelta, buckets: int) -> int:
    """The smallest round bucket size that cuts `window` into about `buckets` bars.

    Up to 10 % more bars are allowed, so that "30 days ago" (a few seconds over 30 days)
    still gets 12-hour bars rather than half as many daily ones.
    """
    wanted = max(1, int(window.total_seconds() / buckets / 1.1))
    for size in _BUCKET_SIZES:
        if size >= wanted:
            return size
    return -(-wanted // _DAY) * _DAY


def _aware(value: datetime | None) -> datetime | None:
    """Query times without a zone are taken as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
