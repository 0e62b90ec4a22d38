"""JobProcessor through a real worker: each attempt's audit row, retries, unknown job types."""

from __future__ import annotations

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import get_job_history
from tests.helpers.waiting import audit_stored
from tests.helpers.workers import StartWorker


async def test_success_and_failure_are_recorded_with_result_and_error_text(
    app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    manager = app.queue_manager
    ok = await manager.submit_job("echo", {"value": [1, 2]}, user_id=7)
    bad = await manager.submit_job("flaky", {"failures": 9, "message": "chain said no"})
    await manager.wait_until_finished(ok, timeout=10)
    await manager.wait_until_finished(bad, timeout=10)
    await audit_stored(app.redis)

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
    assert "RuntimeError: chain said no (attempt 1)" in (failure.error or "")
    assert "flaky_job" in (failure.error or "")  # the traceback is kept, not only the message
    for row in (success, failure):
        assert row.started_at <= row.completed_at
        assert row.duration_ms == round((row.completed_at - row.started_at).total_seconds() * 1000)


async def test_a_return_value_json_cannot_hold_fails_the_attempt_in_bullmq_and_the_audit(
    app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    manager = app.queue_manager
    nan = await manager.submit_job("notJson", {}, attempts=3)
    after = await manager.submit_job("echo", {"value": "still here"})
    outcome = await manager.wait_until_finished(nan, timeout=10)
    await manager.wait_until_finished(after, timeout=10)
    await audit_stored(app.redis)  # the writer is not stuck on a row the database refuses

    assert outcome["state"] == "failed"  # at once: no retry makes it JSON
    assert "return value is not JSON" in outcome["failedReason"]
    [row] = (await get_job_history(app.sessions, type="notJson")).items
    assert (row.status, row.result) == ("failed", None)
    assert "return value is not JSON" in (row.error or "")
    assert [r.result for r in (await get_job_history(app.sessions, type="echo")).items] == ["still here"]


async def test_jobs_of_other_producers_that_fit_no_column_do_not_stall_the_audit(
    app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    manager = app.queue_manager
    # Another producer (a Node service) may name a job, choose its id or a userId at will.
    long = await manager.queue.add("n" * 150, {"userId": None, "data": {}}, {"jobId": "i" * 300})
    huge = await manager.queue.add("echo", {"userId": 2**70, "data": {}})
    after = await manager.submit_job("echo", {"value": "still here"})
    for job_id in (long.id, huge.id, after):
        await manager.wait_until_finished(job_id, timeout=10)
    await audit_stored(app.redis)

    rows = {row.job_id: row for row in (await get_job_history(app.sessions)).items}
    assert rows[after].result == "still here"
    [stray] = [row for row in rows.values() if row.job_id.startswith("iii")]
    assert (stray.status, stray.type) == ("failed", "n" * 100)  # cut to the column
    assert (rows[huge.id].status, rows[huge.id].user_id) == ("failed", None)
    assert "userId must be an integer in 0.." in (rows[huge.id].error or "")


async def test_each_retry_is_its_own_row(app: ServerApp, start_worker: StartWorker) -> None:
    await start_worker()
    job_id = await app.queue_manager.submit_job(
        "flaky", {"failures": 2}, attempts=3, backoff={"type": "fixed", "delay": 50}
    )
    outcome = await app.queue_manager.wait_until_finished(job_id, timeout=10)
    await audit_stored(app.redis)

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
    await audit_stored(app.redis)

    assert failed["state"] == "failed"
    assert "unknown job type 'retiredJob'" in failed["failedReason"]
    assert done == {**done, "state": "completed", "returnvalue": "still here"}
    rows = (await get_job_history(app.sessions, type="retiredJob")).items
    assert len(rows) == 1  # no retries for a type no worker knows
