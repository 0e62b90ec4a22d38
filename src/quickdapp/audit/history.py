"""Audit history, newest first, paged by cursor on (created_at, id) at any depth.

A page reads `limit` rows from an index that ends in (created_at, id), from the cursor on, so
the millionth row back costs what the first does. Rows written while someone pages never
shift the pages (as offsets would): no row is skipped or shown twice. The total is counted up
to TOTAL_CAP and then given as "at least": counting a million matching rows per page was most
of the cost of a page.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.attempts import Status
from quickdapp.audit.times import EPOCH, LATEST, check_time
from quickdapp.db.schema import WorkerJob

MAX_LIMIT = 1000
MAX_OFFSET = 10_000
"""Offsets walk and drop rows; past this, page with cursors."""
TOTAL_CAP = 10_000
"""Matching rows are counted up to this many; past it the total is `TOTAL_CAP`, not exact."""
MAX_USER_ID = 2**63 - 1  # user_id is a BIGINT
_CURSOR = re.compile(r"(\d{1,17})_(\d{1,19})")


@dataclass(frozen=True, order=True)
class Cursor:
    """A row's place in the history: its created_at and id. Written as `<µs since 1970>_<id>`."""

    created_at: datetime
    id: int

    def __str__(self) -> str:
        return f"{(self.created_at - EPOCH) // timedelta(microseconds=1)}_{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """The cursor written as `text`; ValueError when it is not one."""
        match = _CURSOR.fullmatch(text.strip())
        if match is None or int(match[2]) > MAX_USER_ID:
            raise ValueError(f"not a history cursor: {text[:80]!r} (expected <microseconds>_<id>)")
        created_at = EPOCH + timedelta(microseconds=int(match[1]))
        if created_at >= LATEST:
            raise ValueError(f"history cursor out of range: {text[:80]!r}")
        return cls(created_at, int(match[2]))

    @classmethod
    def of(cls, row: WorkerJob) -> Cursor:
        return cls(row.created_at, row.id)


@dataclass(frozen=True)
class HistoryPage:
    """One page of audit rows, newest first.

    `total` counts the rows matching the filters, exactly when `total_exact`, else it is a
    lower bound (TOTAL_CAP). `older` and `newer` are the cursors of the next pages either way
    (pass them as `before` and `after`), None where there is nothing more.
    """

    items: list[WorkerJob]
    total: int
    total_exact: bool
    limit: int
    offset: int
    older: Cursor | None
    newer: Cursor | None


async def get_job_history(
    sessions: async_sessionmaker[AsyncSession],
    *,
    type: str | None = None,
    status: Status | None = None,
    user_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
    before: Cursor | None = None,
    after: Cursor | None = None,
) -> HistoryPage:
    """Audit rows matching every filter given, newest first.

    `before`: the `limit` rows just older than that cursor; `after`: the `limit` rows just newer;
    neither: the newest rows, skipping `offset` (at most MAX_OFFSET) of them.
    """
    _check(limit=limit, offset=offset, user_id=user_id, before=before, after=after)
    check_time("since", since)
    check_time("until", until)
    conditions = _filters(type=type, status=status, user_id=user_id, since=since, until=until)
    async with sessions() as session:
        total = await _capped_count(session, conditions)
        if after is not None:
            items, older, newer = await _page_newer(session, conditions, after, limit)
        else:
            items, older, newer = await _page_older(session, conditions, limit, offset, before)
    return HistoryPage(
        items=items,
        total=min(total, TOTAL_CAP),
        total_exact=total <= TOTAL_CAP,
        limit=limit,
        offset=offset if before is None and after is None else 0,
        older=older,
        newer=newer,
    )


_Page = tuple[list[WorkerJob], Cursor | None, Cursor | None]
"""A page's rows, newest first, and the cursors of the pages older and newer than it."""


def _filters(
    *,
    type: str | None,
    status: Status | None,
    user_id: int | None,
    since: datetime | None,
    until: datetime | None,
) -> list[Any]:
    """The WHERE conditions of the filters given."""
    conditions: list[Any] = []
    if type is not None:
        conditions.append(WorkerJob.type == type)
    if status is not None:
        # Written into the SQL, not bound: only a known 'failed' lets PostgreSQL's generic plans
        # and SQLite use the partial index of failures.
        conditions.append(WorkerJob.status == literal(status, literal_execute=True))
    if user_id is not None:
        conditions.append(WorkerJob.user_id == user_id)
    if since is not None:
        conditions.append(WorkerJob.created_at >= since)
    if until is not None:
        conditions.append(WorkerJob.created_at < until)
    return conditions


async def _capped_count(session: AsyncSession, conditions: list[Any]) -> int:
    """The rows matching `conditions`, counted up to TOTAL_CAP + 1."""
    capped = select(literal(1)).select_from(WorkerJob).where(*conditions).limit(TOTAL_CAP + 1)
    return int(await session.scalar(select(func.count()).select_from(capped.subquery())) or 0)


async def _page_newer(session: AsyncSession, conditions: list[Any], after: Cursor, limit: int) -> _Page:
    """The `limit` rows just newer than `after`: read upward, shown newest first."""
    found = list(
        await session.scalars(
            select(WorkerJob)
            .where(*conditions, _newer_than(after))
            .order_by(WorkerJob.created_at, WorkerJob.id)
            .limit(limit + 1)
        )
    )
    items = found[:limit][::-1]
    newer = Cursor.of(items[0]) if len(found) > limit else None
    older = Cursor.of(items[-1]) if items else after
    return items, older, newer


async def _page_older(
    session: AsyncSession, conditions: list[Any], limit: int, offset: int, before: Cursor | None
) -> _Page:
    """The `limit` rows just older than `before`, or without it the newest past `offset`."""
    query = (
        select(WorkerJob)
        .where(*conditions)
        .order_by(WorkerJob.created_at.desc(), WorkerJob.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(_older_than(before))
    else:
        query = query.offset(offset)
    found = list(await session.scalars(query))
    items = found[:limit]
    older = Cursor.of(items[-1]) if len(found) > limit else None
    newer: Cursor | None
    if before is not None:
        newer = Cursor.of(items[0]) if items else before
    else:
        newer = Cursor.of(items[0]) if offset and items else None
    return items, older, newer


def _check(
    *, limit: int, offset: int, user_id: int | None, before: Cursor | None, after: Cursor | None
) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise ValueError(
            f"offset must be between 0 and {MAX_OFFSET}, got {offset}: page deeper with cursors"
        )
    if user_id is not None and not 0 <= user_id <= MAX_USER_ID:
        raise ValueError(f"user_id must be between 0 and {MAX_USER_ID}, got {user_id}")
    if before is not None and after is not None:
        raise ValueError("give before or after, not both")
    if offset and (before is not None or after is not None):
        raise ValueError("give an offset or a cursor, not both")


def _older_than(cursor: Cursor) -> Any:
    # Spelled as a range on created_at plus a tie-break, which both PostgreSQL and SQLite
    # match to the index's (created_at, id) order; a row-value comparison is not on SQLite.
    return and_(
        WorkerJob.created_at <= cursor.created_at,
        or_(WorkerJob.created_at < cursor.created_at, WorkerJob.id < cursor.id),
    )


def _newer_than(cursor: Cursor) -> Any:
    return and_(
        WorkerJob.created_at >= cursor.created_at,
        or_(WorkerJob.created_at > cursor.created_at, WorkerJob.id > cursor.id),
    )


async def wait_for_rows(
    sessions: async_sessionmaker[AsyncSession], job_id: str, attempts: int, timeout: float
) -> bool:
    """Wait until job `job_id` has `attempts` audit rows (they arrive through the audit
    stream); False when they are not all there after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    statement = select(func.count()).select_from(WorkerJob).where(WorkerJob.job_id == job_id)
    while True:
        async with sessions() as session:
            if (await session.scalar(statement) or 0) >= attempts:
                return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
