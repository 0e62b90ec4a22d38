"""Start-up of the chain jobs, `quickdapp health` on the chain, and `quickdapp dev` with anvil."""

from __future__ import annotations

import json
import signal
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
from tests.helpers.chain import Chain, chain_settings
from tests.helpers.processes import StartQuickdapp, run_quickdapp
from tests.helpers.waiting import eventually


def test_health_says_when_no_chain_is_configured(settings: Settings) -> None:
    result = run_quickdapp(settings, "health")

    assert result.returncode == 0, result.stderr
    chain = json.loads(result.stdout)["chain"]
    assert chain["configured"] is False
    assert "no chain is configured" in chain["message"]


def test_health_reports_the_configured_chain(settings: Settings, anvil: AnvilManager) -> None:
    result = run_quickdapp(chain_settings(settings, anvil.url), "health")

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
            code = bytes(await chain.w3.eth.get_code(multicall3().address))
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
