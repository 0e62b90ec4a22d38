"""The `quickdapp` command as a user runs it: serve, dev (with anvil), the schedule commands."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_utils.address import to_checksum_address

from bench.chain import Chain
from quickdapp.app.server_app import ServerApp
from quickdapp.chain.multicall3 import code_hash, multicall3
from quickdapp.cli import main
from quickdapp.config import Settings
from quickdapp.db.key_values import get_value
from quickdapp.devtools.anvil import ANVIL_CHAIN_ID, free_port, rpc_chain_id
from quickdapp.jobs.watch_chain import cursor_key
from tests.helpers.chain import chain_settings
from tests.helpers.processes import (
    QuickdappProcess,
    StartQuickdapp,
    run_quickdapp,
    settings_variables,
)
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


async def test_quickdapp_dev_starts_anvil_deploys_multicall3_and_watches(
    settings: Settings, start_quickdapp: StartQuickdapp, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    configured = chain_settings(settings, url)
    # Its .data/ (anvil state) goes into tmp_path.
    dev = start_quickdapp("dev", base=configured, cwd=tmp_path)
    chain = Chain.connect(url)
    app = await ServerApp.create(configured, None)
    try:

        async def deployed() -> bool:
            if rpc_chain_id(url) is None:
                return False
            code = bytes(await chain.w3.eth.get_code(to_checksum_address(multicall3().address)))
            return bool(code) and code_hash(code) == multicall3().runtime_code_hash

        async def cursor() -> str | None:
            return await get_value(app.sessions, cursor_key(ANVIL_CHAIN_ID))

        await eventually(deployed, 60, lambda: f"Multicall3 to be deployed; log:\n{dev.log()[-3000:]}")
        await eventually(cursor, 60, lambda: f"watchChain to run; log:\n{dev.log()[-3000:]}")
    finally:
        await app.close()
        await chain.close()
        dev.send_signal(signal.SIGINT)
        await dev.exited(30)
    assert rpc_chain_id(url) is None, "quickdapp dev stopped the anvil it started"


def test_cli_schedule_list_and_unschedule(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / "cli.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings_variables(settings).items()))
    cli = ["--env-file", str(env_file)]

    assert main([*cli, "schedule", "cleanupAuditLog", "0 25 * * *", '{"retentionDays": 9}']) == 2
    assert "hour field '25'" in capsys.readouterr().err
    assert (
        main([*cli, "schedule", "cleanupAuditLog", "0 4 * * *", '{"retentionDays": 9}', "--key", "c"])
        == 0
    )
    assert "scheduled cleanupAuditLog as 'c'" in capsys.readouterr().out

    assert main([*cli, "schedules"]) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["KEY", "TYPE", "PATTERN", "TZ"]
    assert line.split()[:4] == ["c", "cleanupAuditLog", "0", "4"]
    assert line.endswith('04:00:00  {"retentionDays":9,"batchSize":5000}')

    assert main([*cli, "unschedule", "c"]) == 0
    assert main([*cli, "unschedule", "c"]) == 1
    assert "no schedule 'c'" in capsys.readouterr().err
    assert main([*cli, "schedules", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


async def test_submit_wait_then_history_shows_the_attempts_row(
    settings: Settings, start_quickdapp: StartQuickdapp
) -> None:
    # `quickdapp worker` on its own runs its own audit writer; the row travels through Redis.
    worker = start_quickdapp("worker", log_level="INFO")
    await eventually(
        lambda: asyncio.to_thread(lambda: "processing 'jobs'" in worker.log()), START_TIMEOUT, "worker"
    )
    submitted = await asyncio.to_thread(
        run_quickdapp, settings, "submit", "echo", '{"value": "seen"}', "--wait", "30"
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split()[0]
    # Right after `submit --wait` returns, `history` already shows the attempt's row.
    history = await asyncio.to_thread(run_quickdapp, settings, "history", "--type", "echo")
    assert history.returncode == 0, history.stderr
    rows = json.loads(history.stdout)["items"]
    assert [row["status"] for row in rows if row["job_id"] == job_id] == ["completed"]
