"""What a handler reports while it runs (progress, log lines) lands where BullMQ tools read it."""

from __future__ import annotations

from quickdapp.app.server_app import ServerApp
from tests.helpers.workers import StartWorker


async def test_progress_and_log_lines_are_stored_on_the_job(
    app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    job_id = await app.queue_manager.submit_job("report", {"steps": 4})
    outcome = await app.queue_manager.wait_until_finished(job_id, timeout=10)

    assert outcome["state"] == "completed"
    job = await app.queue_manager.inspect.job(job_id)
    assert job is not None and job.progress == 100
    assert await app.queue_manager.inspect.logs(job_id) == [f"step {n} of 4" for n in (1, 2, 3, 4)]
