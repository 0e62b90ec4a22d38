"""`quickdapp worker` as a real process: SIGTERM lets active jobs finish and takes no new ones."""

from __future__ import annotations

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.store import get_job_history
from tests.helpers.processes import StartQuickdapp
from tests.helpers.waiting import eventually


async def test_sigterm_finishes_the_active_job_and_leaves_the_rest_waiting(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    worker = start_quickdapp("worker")
    manager = app.queue_manager
    running = await manager.submit_job("sleep", {"ms": 1500})
    waiting = await manager.submit_job("sleep", {"ms": 10})

    async def active() -> bool:
        return await manager.queue.getJobState(running) == "active"

    await eventually(active, 15, "the first job to be active")
    worker.terminate()
    code = await worker.exited(30)

    assert code == 0, worker.log()
    assert await manager.queue.getJobState(running) == "completed"
    assert await manager.queue.getJobState(waiting) == "prioritized"
    rows = (await get_job_history(app.sessions)).items
    assert [(r.job_id, r.status) for r in rows] == [(running, "completed")]
    assert "SIGTERM received: finishing active jobs" in worker.log()
