"""`quickdapp worker` as a real process: SIGTERM lets active jobs finish and takes no new ones."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import get_job_history
from quickdapp.config import Settings
from tests.helpers.processes import settings_env
from tests.helpers.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


async def test_sigterm_finishes_the_active_job_and_leaves_the_rest_waiting(
    app: ServerApp, settings: Settings
) -> None:
    env = {**os.environ, **settings_env(settings)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "quickdapp.cli", "--env-file", str(ROOT / ".env.test"), "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        manager = app.queue_manager
        running = await manager.submit_job("sleep", {"ms": 1500})
        waiting = await manager.submit_job("sleep", {"ms": 10})

        async def active() -> bool:
            return await manager.queue.getJobState(running) == "active"

        await eventually(active, 15, "the first job to be active")
        worker.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(worker.communicate, timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    assert worker.returncode == 0, output
    assert await manager.queue.getJobState(running) == "completed"
    assert await manager.queue.getJobState(waiting) == "prioritized"
    rows = (await get_job_history(app.sessions)).items
    assert [(r.job_id, r.status) for r in rows] == [(running, "completed")]
    assert "SIGTERM received: finishing active jobs" in output
