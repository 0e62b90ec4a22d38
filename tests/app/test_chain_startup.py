"""Start-up of the chain jobs, `quickdapp health` on the chain, and `quickdapp dev` with anvil."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from quickdapp.app.server_app import ServerApp
from quickdapp.app.startup import on_start
from quickdapp.chain.multicall3 import code_hash, multicall3
from quickdapp.config import Settings
from quickdapp.db.key_values import get_value
from quickdapp.devtools.anvil import ANVIL_CHAIN_ID, AnvilManager, dev_anvil, free_port, rpc_chain_id
from quickdapp.jobs.deploy_multicall3 import STARTUP_JOB_ID
from quickdapp.jobs.registry import JobRegistry
from quickdapp.jobs.watch_chain import cursor_key
from quickdapp.queue.schedules import DEFAULT_JOBS
from tests.helpers.chain import Chain, chain_env, chain_settings
from tests.helpers.paths import ROOT


def run_cli(settings: Settings, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **chain_env(settings)}
    if settings.chain_rpc_url is None:
        env.pop("CHAIN_RPC_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "quickdapp.cli", "--env-file", str(tmp_path / "none.env"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_health_says_when_no_chain_is_configured(settings: Settings, tmp_path: Path) -> None:
    result = run_cli(settings, "health", tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    chain = json.loads(result.stdout)["chain"]
    assert chain["configured"] is False
    assert "no chain is configured" in chain["message"]


def test_health_reports_the_configured_chain(
    settings: Settings, anvil: AnvilManager, tmp_path: Path
) -> None:
    result = run_cli(chain_settings(settings, anvil.url), "health", tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    chain = json.loads(result.stdout)["chain"]
    assert chain["ok"] is True
    assert chain["chainId"] == ANVIL_CHAIN_ID
    assert chain["head"] >= 0
    assert chain["multicall3"] in ("deployed", "not deployed")
    assert "key" not in json.dumps(chain).lower(), "no secret in the report"


WATCH_CHAIN = next(row for row in DEFAULT_JOBS if row.type == "watchChain")


async def test_start_up_queues_deploy_once_and_schedules_watch_chain(
    settings: Settings, anvil: AnvilManager, registry: JobRegistry
) -> None:
    app = await ServerApp.create(chain_settings(settings, anvil.url), registry)
    try:
        for _ in range(3):  # three restarts
            await on_start(app)
        jobs = await app.queue_manager.queue.getJobs(["prioritized", "waiting"])
        assert [job.id for job in jobs if job.name == "deployMulticall3"] == [STARTUP_JOB_ID]
        schedule = await app.queue_manager.get_cron_job("watch-chain")
        assert schedule is not None and schedule.pattern == WATCH_CHAIN.pattern == "*/3 * * * * *"
    finally:
        await app.close()

    unconfigured = await ServerApp.create(settings, registry)
    try:
        await on_start(unconfigured)
        assert await unconfigured.queue_manager.get_cron_job("watch-chain") is None
    finally:
        await unconfigured.close()


def test_dev_anvil_starts_a_local_node_only_where_none_answers(
    settings: Settings, anvil: AnvilManager, tmp_path: Path
) -> None:
    with dev_anvil(chain_settings(settings, anvil.url), tmp_path) as reused:
        assert reused is not None and not reused.started_here
    assert rpc_chain_id(anvil.url) == ANVIL_CHAIN_ID, "a node it did not start is left alone"

    url = f"http://127.0.0.1:{free_port()}"
    with dev_anvil(chain_settings(settings, url), tmp_path) as started:
        assert started is not None and started.started_here
        assert rpc_chain_id(url) == ANVIL_CHAIN_ID
    assert rpc_chain_id(url) is None, "stopped on exit"

    with dev_anvil(chain_settings(settings, "https://rpc.example.invalid"), tmp_path) as remote:
        assert remote is None


async def test_quickdapp_dev_starts_anvil_deploys_multicall3_and_watches(
    settings: Settings, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    configured = chain_settings(settings, url)
    env = {**os.environ, **chain_env(configured)}
    with (tmp_path / "dev.log").open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "quickdapp.cli", "--env-file", str(tmp_path / "none.env"), "dev"],
            cwd=tmp_path,  # its .data/ (anvil state) goes here
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        chain = Chain.connect(url)
        app = await ServerApp.create(configured, None)
        try:
            deadline = time.monotonic() + 60
            deployed = cursor = None
            while time.monotonic() < deadline and not (deployed and cursor):
                await asyncio.sleep(0.5)
                if rpc_chain_id(url) is None:
                    continue
                code = bytes(await chain.w3.eth.get_code(multicall3().address))
                deployed = code and code_hash(code) == multicall3().runtime_code_hash
                cursor = await get_value(app.sessions, cursor_key(ANVIL_CHAIN_ID))
            log = (tmp_path / "dev.log").read_text()
            assert deployed, f"Multicall3 was not deployed:\n{log[-3000:]}"
            assert cursor is not None, f"watchChain did not run:\n{log[-3000:]}"
        finally:
            await app.close()
            await chain.close()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert rpc_chain_id(url) is None, "quickdapp dev stopped the anvil it started"
