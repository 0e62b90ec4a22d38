"""`quickdapp serve` and `quickdapp dev` as a user runs them: real processes on a real port."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from tests.helpers.paths import ROOT
from tests.web.processes import free_port, process_env, quickdapp_command

START_TIMEOUT = 30
URL_LINE = re.compile(rb"dashboard: (http://127\.0\.0\.1:\d+/admin/queues/)")


@asynccontextmanager
async def running(
    settings: Settings, tmp_path: Path, command: str
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """Start `quickdapp COMMAND` on a free port; yields the dashboard URL it prints, then stops it
    with SIGTERM and checks that it exits cleanly."""
    port = free_port()
    env = process_env(settings, port=port, metrics_dir=tmp_path / "metrics")
    log = (tmp_path / f"{command}.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *quickdapp_command(tmp_path / "env", command),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        match = URL_LINE.search(line)
        assert match, f"{command} printed {line!r}; log: {(tmp_path / f'{command}.log').read_text()}"
        url = match.group(1).decode()
        assert f":{port}/" in url
        await _wait_until_listening(port)
        yield url, process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), START_TIMEOUT)
        log.close()
    assert code == 0, (tmp_path / f"{command}.log").read_text()


async def _wait_until_listening(port: int) -> None:
    for _ in range(300):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


async def test_serve_answers_health_and_ready_and_never_runs_jobs(
    settings: Settings, app: ServerApp, tmp_path: Path
) -> None:
    async with running(settings, tmp_path, "serve") as (url, _):
        auth = (settings.admin_username, settings.admin_password)
        async with httpx.AsyncClient(auth=auth) as client:
            assert (await client.get(url.replace("/admin/queues/", "/health"))).status_code == 200
            ready = await client.get(url.replace("/admin/queues/", "/ready"))
            assert ready.status_code == 200 and ready.json()["status"] == "ready"
            made = await client.post(url + "api/jobs", json={"type": "echo", "data": {"value": 1}})
            assert made.status_code == 201
            await asyncio.sleep(1.0)
            overview = (await client.get(url + "api/overview")).json()
    # The server enqueued the job; no worker was there to run it, and the server did not.
    assert overview["workers"] == []
    assert await app.queue_manager.queue.getJobState(made.json()["id"]) == "prioritized"


async def test_dev_prints_the_dashboard_url_and_the_page_shows_live_jobs(
    settings: Settings, app: ServerApp, tmp_path: Path
) -> None:
    async with running(settings, tmp_path, "dev") as (url, _):
        auth = (settings.admin_username, settings.admin_password)
        async with httpx.AsyncClient(auth=auth) as client:
            for _ in range(200):  # the worker connects beside the server, maybe a little later
                overview = (await client.get(url + "api/overview")).json()
                if overview["workers"]:
                    break
                await asyncio.sleep(0.05)
            assert len(overview["workers"]) == 1
            job_id = await app.queue_manager.submit_job("sleep", {"ms": 1500})
            for _ in range(100):
                active = (await client.get(url + "api/jobs", params={"state": "active"})).json()
                if active["total"]:
                    break
                await asyncio.sleep(0.05)
            assert [job["id"] for job in active["jobs"]] == [job_id]
            await app.queue_manager.wait_until_finished(job_id, 10)
            job = (await client.get(url + f"api/jobs/{job_id}")).json()
    assert job["state"] == "completed" and job["return_value"] == {"slept_ms": 1500}
