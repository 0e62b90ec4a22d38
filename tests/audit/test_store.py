"""The audit store: a row per attempt, history queries, metrics, deletion past a cutoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.attempts import JobExecution, Status
from quickdapp.audit.cleanup import delete_job_history_before
from quickdapp.audit.histogram import percentile
from quickdapp.audit.history import get_job_history
from quickdapp.audit.job_metrics import get_job_metrics
from quickdapp.audit.store import record_job_execution, record_job_executions
from quickdapp.db.engine import create_engine, session_factory
from tests.helpers.audit import audit_job_ids, execution

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _add_row(app: ServerApp, job_id: str, created_at: datetime, attempt: int = 1) -> None:
    await record_job_execution(
        app.sessions, execution(job_id, status="failed", at=created_at, attempt=attempt)
    )


async def test_recording_the_same_attempt_twice_keeps_one_row(app: ServerApp) -> None:
    await record_job_execution(app.sessions, execution("a"))
    await record_job_execution(app.sessions, execution("a", status="failed"))
    await record_job_execution(app.sessions, execution("a", attempt=2))

    rows = (await get_job_history(app.sessions)).items
    assert sorted((r.attempt, r.status) for r in rows) == [(1, "completed"), (2, "completed")]


async def test_text_postgresql_cannot_hold_is_stored_without_stalling_the_batch(app: ServerApp) -> None:
    # PostgreSQL's text cannot hold U+0000: without care one attempt would stall the trail.
    await record_job_executions(
        app.sessions,
        [
            execution("nul", status="failed", data={"k\x00": "v\x00"}, result="r\x00", error="e\x00"),
            execution("literal", error="\\u0000 stays text"),
            execution("nan", result={"ratio": float("nan")}),
        ],
    )

    rows = {r.job_id: r for r in (await get_job_history(app.sessions)).items}
    assert (rows["nul"].data, rows["nul"].result, rows["nul"].error) == (
        {"k\ufffd": "v\ufffd"},
        "r\ufffd",
        "e\ufffd",
    )
    assert rows["literal"].error == "\\u0000 stays text"
    assert rows["nan"].result == "{'ratio': nan}"


async def test_a_job_id_or_type_longer_than_its_column_is_stored_cut(app: ServerApp) -> None:
    # Another producer may name a job at any length; the batch must not be refused for it.
    await record_job_executions(app.sessions, [execution("j" * 300, type="t" * 150), execution("ok")])

    rows = (await get_job_history(app.sessions)).items
    assert sorted((r.job_id, r.type) for r in rows) == [("j" * 255, "t" * 100), ("ok", "echo")]


async def test_durations_are_rounded_as_the_attempt_rounds_them(app: ServerApp) -> None:
    # PostgreSQL computes duration_ms from the entry's times: half a millisecond goes to the
    # even one, as Python's round() in JobExecution.duration_ms does.
    made = [
        JobExecution(f"d{us}", 1, "echo", None, {}, "completed", T0, T0 + timedelta(microseconds=us))
        for us in (0, 1_499, 1_500, 1_501, 2_500, 3_500, 86_400_000_000 + 500)
    ]
    await record_job_executions(app.sessions, made)

    rows = {r.job_id: r.duration_ms for r in (await get_job_history(app.sessions)).items}
    assert rows == {e.job_id: e.duration_ms for e in made}
    assert rows["d2500"] == 2 and rows["d3500"] == 4


async def test_history_filters_and_pages_newest_first(app: ServerApp) -> None:
    for i in range(12):
        await record_job_execution(
            app.sessions,
            execution(
                f"job{i}",
                type="echo" if i % 2 else "sleep",
                status="failed" if i % 3 == 0 else "completed",
                at=T0 + timedelta(minutes=i),
                duration_ms=10,
                user_id=i % 4,
            ),
        )
    sessions = app.sessions

    first = await get_job_history(sessions, limit=5)
    second = await get_job_history(sessions, limit=5, offset=5)
    last = await get_job_history(sessions, limit=5, offset=10)
    assert first.total == 12
    assert [r.job_id for r in first.items + second.items + last.items] == [
        f"job{i}" for i in range(11, -1, -1)
    ]

    echo = await get_job_history(sessions, type="echo")
    assert {r.job_id for r in echo.items} == {f"job{i}" for i in range(1, 12, 2)}
    failed = await get_job_history(sessions, status="failed")
    assert [r.job_id for r in failed.items] == ["job9", "job6", "job3", "job0"]
    user = await get_job_history(sessions, user_id=1)
    assert [r.job_id for r in user.items] == ["job9", "job5", "job1"]
    window = await get_job_history(
        sessions, since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=6)
    )
    assert [r.job_id for r in window.items] == ["job5", "job4", "job3"]
    both = await get_job_history(sessions, type="sleep", status="failed", user_id=2)
    assert [r.job_id for r in both.items] == ["job6"] and both.total == 1

    with pytest.raises(ValueError, match="limit must be between 1 and 1000"):
        await get_job_history(sessions, limit=0)


async def test_metrics_per_type_match_known_inputs(app: ServerApp) -> None:
    # echo: durations 10, 20, ..., 100 ms, 8 completed and 2 failed; sleep: one 500 ms run.
    for i in range(10):
        await record_job_execution(
            app.sessions,
            execution(
                f"e{i}",
                duration_ms=(i + 1) * 10,
                status="failed" if i in (0, 9) else "completed",
                at=T0 + timedelta(seconds=i),
            ),
        )
    await record_job_execution(app.sessions, execution("s", type="sleep", at=T0, duration_ms=500))
    await record_job_execution(
        app.sessions, execution("old", at=T0 - timedelta(days=1), duration_ms=9999)
    )

    metrics = {m.type: m for m in await get_job_metrics(app.sessions, since=T0 - timedelta(seconds=1))}

    echo = metrics["echo"]
    assert (echo.count, echo.completed, echo.failed) == (10, 8, 2)
    assert echo.success_rate == pytest.approx(0.8)
    assert echo.average_ms == pytest.approx(55.0)
    assert echo.p50_ms == pytest.approx(55.0)
    assert echo.p95_ms == pytest.approx(95.5)
    sleep = metrics["sleep"]
    assert (sleep.count, sleep.average_ms, sleep.p50_ms, sleep.p95_ms) == (1, 500.0, 500.0, 500.0)
    only_sleep = await get_job_metrics(app.sessions, since=T0 - timedelta(seconds=1), type="sleep")
    assert [m.type for m in only_sleep] == ["sleep"]


async def test_sqlite_metrics_compute_the_same_figures(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    try:
        for i in range(10):
            status: Status = "failed" if i in (0, 9) else "completed"
            ended = T0 + timedelta(milliseconds=(i + 1) * 10)
            await record_job_execution(
                sessions, execution(f"e{i}", status=status, at=ended, duration_ms=(i + 1) * 10)
            )
        [echo] = await get_job_metrics(sessions, since=T0 - timedelta(seconds=1))
    finally:
        await engine.dispose()
    assert (echo.count, echo.completed, echo.failed) == (10, 8, 2)
    assert (echo.average_ms, echo.p50_ms) == (55.0, 55.0)
    assert echo.p95_ms == pytest.approx(95.5)


def test_python_percentile_matches_postgres_percentile_cont() -> None:
    values = [(i + 1) * 10 for i in range(10)]
    assert percentile(values, 0.5) == 55.0
    assert percentile(values, 0.95) == pytest.approx(95.5)
    assert percentile([7], 0.95) == 7


# Deletion past a cutoff (what cleanupAuditLog runs)


async def test_deletes_rows_created_before_the_cutoff_and_not_at_it(app: ServerApp) -> None:
    cutoff = datetime(2026, 1, 31, 3, 0, tzinfo=UTC)
    await _add_row(app, "long-ago", cutoff - timedelta(days=400))
    await _add_row(app, "just-outside", cutoff - timedelta(microseconds=1))
    await _add_row(app, "at-cutoff", cutoff)
    await _add_row(app, "just-inside", cutoff + timedelta(microseconds=1))

    deleted = await delete_job_history_before(app.sessions, cutoff)

    assert deleted == 2
    assert await audit_job_ids(app.sessions) == ["at-cutoff", "just-inside"]


async def test_deletes_in_batches_and_reports_the_count(app: ServerApp) -> None:
    now = datetime.now(UTC)
    for index in range(23):
        await _add_row(app, f"old-{index:02}", now - timedelta(days=40, minutes=index))
    await _add_row(app, "new-1", now)
    await _add_row(app, "new-2", now - timedelta(days=1))
    batches: list[int] = []

    async def keep(job_ids: set[str]) -> set[str]:
        batches.append(len(job_ids))
        return set()

    deleted = await delete_job_history_before(
        app.sessions, now - timedelta(days=30), batch_size=5, keep=keep
    )

    assert deleted == 23
    assert batches == [5, 5, 5, 5, 3]
    assert await audit_job_ids(app.sessions) == ["new-1", "new-2"]


async def test_rows_a_batch_keeps_are_not_read_again(app: ServerApp) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    for index in range(7):
        await _add_row(app, f"keep-{index}" if index % 2 else f"drop-{index}", old)
    seen: list[str] = []

    async def keep(job_ids: set[str]) -> set[str]:
        seen.extend(job_ids)
        return {job_id for job_id in job_ids if job_id.startswith("keep-")}

    deleted = await delete_job_history_before(
        app.sessions, old + timedelta(days=1), batch_size=2, keep=keep
    )

    assert deleted == 4
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 7
    assert await audit_job_ids(app.sessions) == ["keep-1", "keep-3", "keep-5"]
