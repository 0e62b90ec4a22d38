"""History pages by cursor: every row once, in order, while rows are written; filters; bounds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.audit.history import TOTAL_CAP, Cursor, HistoryPage, get_job_history
from quickdapp.audit.store import record_job_executions
from tests.audit.attempts import attempt, random_attempts, stored_rows

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def _walk_older(
    sessions: async_sessionmaker[AsyncSession], limit: int, **filters: Any
) -> list[HistoryPage]:
    pages = [await get_job_history(sessions, limit=limit, **filters)]
    while pages[-1].older is not None:
        pages.append(await get_job_history(sessions, limit=limit, before=pages[-1].older, **filters))
    return pages


def _keys(pages: list[HistoryPage]) -> list[tuple[datetime, int]]:
    return [(row.created_at, row.id) for page in pages for row in page.items]


async def test_walking_older_shows_every_row_once_while_rows_are_written(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # Ties on created_at (rows of one group commit) are ordered by id.
    made = [attempt(f"old-{i}", T0 - timedelta(seconds=i // 3)) for i in range(137)]
    await record_job_executions(sessions, made)
    before = {row.id for row in await stored_rows(sessions)}
    writing = True

    async def write() -> None:
        number = 0
        while writing:
            # New rows at the top, and late ones in the middle of the history.
            await record_job_executions(
                sessions,
                [
                    attempt(f"new-{number}", datetime.now(UTC)),
                    attempt(f"late-{number}", T0 - timedelta(seconds=number % 40, milliseconds=500)),
                ],
            )
            number += 1
            await asyncio.sleep(0.002)

    writer = asyncio.create_task(write())
    try:
        pages = [await get_job_history(sessions, limit=10)]
        while pages[-1].older is not None:
            await asyncio.sleep(0.005)  # let the writer in between pages
            pages.append(await get_job_history(sessions, limit=10, before=pages[-1].older))
    finally:
        writing = False
        await writer
    keys = _keys(pages)
    seen = [row_id for _, row_id in keys]
    assert len(seen) == len(set(seen)), "a row was shown twice"
    assert before <= set(seen), "a row was skipped"
    assert keys == sorted(keys, reverse=True)


async def test_walking_newer_retraces_the_pages(sessions: async_sessionmaker[AsyncSession]) -> None:
    await record_job_executions(
        sessions, [attempt(f"j{i}", T0 + timedelta(seconds=i // 2)) for i in range(45)]
    )
    down = _keys(await _walk_older(sessions, 7))
    assert len(down) == 45

    last = await get_job_history(sessions, limit=7, before=Cursor(*down[-8]))
    assert last.newer is not None and last.older is None
    up = list(reversed([(row.created_at, row.id) for row in last.items]))
    page = last
    while page.newer is not None:
        page = await get_job_history(sessions, limit=7, after=page.newer)
        up.extend(reversed([(row.created_at, row.id) for row in page.items]))
    assert up == list(reversed(down))
    assert page.items[0].job_id == "j44"  # the top: nothing newer


async def test_every_filter_pages_to_exactly_its_rows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    made = random_attempts(300, T0, timedelta(hours=6), seed=3)
    await record_job_executions(sessions, made)
    rows = await stored_rows(sessions)
    since, until = T0 + timedelta(hours=1), T0 + timedelta(hours=4)
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"type": "watchChain"}, lambda r: r.type == "watchChain"),
        ({"status": "failed"}, lambda r: r.status == "failed"),
        (
            {"type": "deployMulticall3", "status": "failed"},
            lambda r: r[2:4] == ("deployMulticall3", "failed"),
        ),
        ({"user_id": 2}, lambda r: r.user_id == 2),
        ({"user_id": 1, "status": "completed"}, lambda r: r.user_id == 1 and r.status == "completed"),
        (
            {"since": since, "until": until, "type": "cleanupAuditLog"},
            lambda r: since <= r.created_at < until and r.type == "cleanupAuditLog",
        ),
    ]
    for filters, wanted in cases:
        pages = await _walk_older(sessions, 9, **filters)
        expected = sorted(((r.created_at, r.id) for r in rows if wanted(r)), reverse=True)
        assert _keys(pages) == expected, filters
        assert pages[0].total == len(expected) and pages[0].total_exact


async def test_offsets_still_serve_shallow_pages(sessions: async_sessionmaker[AsyncSession]) -> None:
    await record_job_executions(
        sessions, [attempt(f"j{i}", T0 + timedelta(seconds=i)) for i in range(12)]
    )
    second = await get_job_history(sessions, limit=5, offset=5)
    assert [row.job_id for row in second.items] == [f"j{i}" for i in range(6, 1, -1)]
    assert second.newer is not None and second.older is not None
    newer = await get_job_history(sessions, limit=5, after=second.newer)
    assert [row.job_id for row in newer.items] == [f"j{i}" for i in range(11, 6, -1)]


async def test_the_total_is_counted_up_to_a_cap(sessions: async_sessionmaker[AsyncSession]) -> None:
    many = [attempt(f"j{i}", T0 + timedelta(milliseconds=i)) for i in range(TOTAL_CAP + 3)]
    many.append(attempt("rare", T0, type="rare"))
    await record_job_executions(sessions, many)

    everything = await get_job_history(sessions, limit=1)
    assert (everything.total, everything.total_exact) == (TOTAL_CAP, False)
    rare = await get_job_history(sessions, type="rare")
    assert (rare.total, rare.total_exact) == (1, True)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"limit": 0}, "limit must be between 1 and 1000"),
        ({"limit": 1001}, "limit must be between 1 and 1000"),
        ({"offset": -1}, "offset must be between 0 and 10000"),
        ({"offset": 10_001}, "page deeper with cursors"),
        ({"user_id": -1}, "user_id must be between 0 and"),
        ({"user_id": 2**63}, "user_id must be between 0 and"),
        ({"since": datetime(1969, 12, 31, tzinfo=UTC)}, "since must be between 1970 and 9000"),
        ({"until": datetime(9999, 1, 1, tzinfo=UTC)}, "until must be between 1970 and 9000"),
        ({"since": datetime(2026, 1, 1)}, "since must have a time zone"),
        ({"before": Cursor(T0, 1), "after": Cursor(T0, 2)}, "before or after, not both"),
        ({"before": Cursor(T0, 1), "offset": 5}, "an offset or a cursor, not both"),
    ],
)
async def test_out_of_range_arguments_are_refused_before_any_query(
    arguments: dict[str, Any], message: str
) -> None:
    # No database is reached: the sessions would fail if one were.
    with pytest.raises(ValueError, match=message):
        await get_job_history(None, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["", "abc", "12_", "_5", "1_2_3", "-5_1", "9" * 18 + "_1", "5_" + "9" * 20]
)
def test_cursors_that_are_not_cursors_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        Cursor.parse(text)


def test_a_cursor_reads_back_what_it_wrote() -> None:
    cursor = Cursor(datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), 987654321)
    assert str(cursor) == "1772366400123456_987654321"
    assert Cursor.parse(str(cursor)) == cursor
