"""The audit trail: a row per attempt, history queries, metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.attempts import JobExecution
from quickdapp.audit.histogram import percentile
from quickdapp.audit.history import get_job_history
from quickdapp.audit.job_metrics import get_job_metrics
from quickdapp.audit.store import record_job_execution
from tests.conftest import StartWorker

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _execution(
    job_id: str,
    *,
    type: str = "echo",
    status: str = "completed",
    at: datetime = T0,
    duration_ms: int = 10,
    user_id: int | None = None,
    attempt: int = 1,
) -> JobExecution:
    return JobExecution(
        job_id=job_id,
        attempt=attempt,
        type=type,
        user_id=user_id,
        data={"n": job_id},
        status=status,  # type: ignore[arg-type]
        started_at=at - timedelta(milliseconds=duration_ms),
        completed_at=at,
        result={"ok": True} if status == "completed" else None,
        error="RuntimeError: boom" if status == "failed" else None,
    )


async def test_success_and_failure_are_recorded_with_result_and_error_text(
    app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    manager = app.queue_manager
    ok = await manager.submit_job("echo", {"value": [1, 2]}, user_id=7)
    bad = await manager.submit_job("flaky", {"failures": 9, "message": "chain said no"})
    await manager.wait_until_finished(ok, timeout=10)
    await manager.wait_until_finished(bad, timeout=10)

    rows = {row.job_id: row for row in (await get_job_history(app.sessions)).items}
    success, failure = rows[ok], rows[bad]
    assert (success.type, success.status, success.user_id, success.attempt) == (
        "echo",
        "completed",
        7,
        1,
    )
    assert success.data == {"value": [1, 2]} and success.result == [1, 2] and success.error is None
    assert failure.status == "failed" and failure.user_id is None and failure.result is None
    assert "RuntimeError: chain said no (attempt 1)" in failure.error
    assert "flaky_job" in failure.error  # the traceback is kept, not only the message
    for row in (success, failure):
        assert row.started_at <= row.completed_at
        assert row.duration_ms == round((row.completed_at - row.started_at).total_seconds() * 1000)


async def test_each_retry_is_its_own_row(app: ServerApp, start_worker: StartWorker) -> None:
    await start_worker()
    job_id = await app.queue_manager.submit_job(
        "flaky", {"failures": 2}, attempts=3, backoff={"type": "fixed", "delay": 50}
    )
    outcome = await app.queue_manager.wait_until_finished(job_id, timeout=10)

    assert outcome["state"] == "completed"
    rows = sorted((await get_job_history(app.sessions)).items, key=lambda r: r.attempt)
    assert [(r.attempt, r.status) for r in rows] == [(1, "failed"), (2, "failed"), (3, "completed")]
    assert all(r.job_id == job_id for r in rows)
    assert rows[2].result == {"succeeded_on_attempt": 3}


async def test_unknown_job_type_fails_at_once_and_the_worker_goes_on(
    app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    manager = app.queue_manager
    # Written past the QueueManager, as an older deployment or another tool might.
    stray = await manager.queue.add("retiredJob", {"userId": None, "data": {}}, {"attempts": 3})
    after = await manager.submit_job("echo", {"value": "still here"})

    failed = await manager.wait_until_finished(stray.id, timeout=10)
    done = await manager.wait_until_finished(after, timeout=10)

    assert failed["state"] == "failed"
    assert "unknown job type 'retiredJob'" in failed["failedReason"]
    assert done == {**done, "state": "completed", "returnvalue": "still here"}
    rows = (await get_job_history(app.sessions, type="retiredJob")).items
    assert len(rows) == 1  # no retries for a type no worker knows


async def test_recording_the_same_attempt_twice_keeps_one_row(app: ServerApp) -> None:
    await record_job_execution(app.sessions, _execution("a"))
    await record_job_execution(app.sessions, _execution("a", status="failed"))
    await record_job_execution(app.sessions, _execution("a", attempt=2))

    rows = (await get_job_history(app.sessions)).items
    assert sorted((r.attempt, r.status) for r in rows) == [(1, "completed"), (2, "completed")]


async def test_history_filters_and_pages_newest_first(app: ServerApp) -> None:
    for i in range(12):
        await record_job_execution(
            app.sessions,
            _execution(
                f"job{i}",
                type="echo" if i % 2 else "sleep",
                status="failed" if i % 3 == 0 else "completed",
                at=T0 + timedelta(minutes=i),
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
            _execution(
                f"e{i}",
                duration_ms=(i + 1) * 10,
                status="failed" if i in (0, 9) else "completed",
                at=T0 + timedelta(seconds=i),
            ),
        )
    await record_job_execution(app.sessions, _execution("s", type="sleep", duration_ms=500))
    await record_job_execution(
        app.sessions, _execution("old", at=T0 - timedelta(days=1), duration_ms=9999)
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


def test_python_percentile_matches_postgres_percentile_cont() -> None:
    values = [(i + 1) * 10 for i in range(10)]
    assert percentile(values, 0.5) == 55.0
    assert percentile(values, 0.95) == pytest.approx(95.5)
    assert percentile([7], 0.95) == 7
