"""`quickdapp serve` and `quickdapp dev` as a user runs them: real processes on a real port."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.devtools.anvil import free_port
from tests.helpers.processes import QuickdappProcess, StartQuickdapp
from tests.helpers.waiting import eventually, listening

START_TIMEOUT = 30
URL_LINE = re.compile(r"dashboard: (http://127\.0\.0\.1:\d+/admin/queues/)")


@asynccontextmanager
async def running(
    start_quickdapp: StartQuickdapp, tmp_path: Path, command: str
) -> AsyncIterator[tuple[str, QuickdappProcess]]:
    """Start `quickdapp COMMAND` on a free port; yields the dashboard URL it prints, then stops it
    with SIGTERM and checks that it exits cleanly."""
    port = free_port()
    process = start_quickdapp(
        command, port=port, metrics_dir=str(tmp_path / "metrics"), log_level="WARNING"
    )

    async def first_line() -> str | None:
        output = process.output()
        if "\n" in output:
            return output.split("\n", 1)[0]
        assert process.returncode is None, f"{command} exited; log: {process.log()}"
        return None

    try:
        line = await eventually(first_line, START_TIMEOUT, f"{command} to print a line")
        match = URL_LINE.search(line)
        assert match, f"{command} printed {line!r}; log: {process.log()}"
        url = match.group(1)
        assert f":{port}/" in url
        await eventually(lambda: listening(port), START_TIMEOUT, f"{command} to listen on {port}")
        yield url, process
    finally:
        process.terminate()
        code = await process.exited(START_TIMEOUT)
    assert code == 0, process.log()


async def test_serve_answers_health_and_ready_and_never_runs_jobs(
    settings: Settings, app: ServerApp, start_quickdapp: StartQuickdapp, tmp_path: Path
) -> None:
    async with running(start_quickdapp, tmp_path, "serve") as (url, _):
        auth = (settings.admin_username, settings.admin_password)
        async with httpx.AsyncClient(auth=auth) as client:
            assert (await client.get(url.replace("/admin/queues/", "/health"))).status_code == 200
            ready = await client.get(url.replace("/admin/queues/", "/ready"))
            assert ready.status_code == 200 and ready.json()["status"] == "ready"
            made = await client.post(url + "api/jobs", json={"type": "echo", "data": {"value": 1}})
            assert made.status_code == 201
            await asyncio.sleep(1.0)  # time passing is the point: a job-running server would run it
            overview = (await client.get(url + "api/overview")).json()
    # The server enqueued the job; no worker was there to run it, and the server did not.
    assert overview["workers"] == []
    assert await app.queue_manager.queue.getJobState(made.json()["id"]) == "prioritized"


async def test_dev_prints_the_dashboard_url_and_the_page_shows_live_jobs(
    settings: Settings, app: ServerApp, start_quickdapp: StartQuickdapp, tmp_path: Path
) -> None:
    async with running(start_quickdapp, tmp_path, "dev") as (url, _):
        auth = (settings.admin_username, settings.admin_password)
        async with httpx.AsyncClient(auth=auth) as client:

            async def with_workers() -> dict[str, Any] | None:
                overview: dict[str, Any] = (await client.get(url + "api/overview")).json()
                return overview if overview["workers"] else None

            # The worker process starts beside the server, maybe a good deal later.
            overview = await eventually(with_workers, START_TIMEOUT, "a live worker on the page")
            assert len(overview["workers"]) == 1
            job_id = await app.queue_manager.submit_job("sleep", {"ms": 1500})

            async def active_jobs() -> dict[str, Any] | None:
                params = {"state": "active"}
                active: dict[str, Any] = (await client.get(url + "api/jobs", params=params)).json()
                return active if active["total"] else None

            active = await eventually(active_jobs, START_TIMEOUT, "an active job on the page")
            assert [job["id"] for job in active["jobs"]] == [job_id]
            await app.queue_manager.wait_until_finished(job_id, 10)
            job = (await client.get(url + f"api/jobs/{job_id}")).json()
    assert job["state"] == "completed" and job["return_value"] == {"slept_ms": 1500}
