"""Start-up (`quickdapp serve` and `dev`): deployMulticall3 queued once, watchChain scheduled."""

from __future__ import annotations

from quickdapp.app.server_app import ServerApp
from quickdapp.app.startup import on_start
from quickdapp.config import Settings
from quickdapp.devtools.anvil import AnvilManager
from quickdapp.jobs.deploy_multicall3 import STARTUP_JOB_ID
from quickdapp.jobs.registry import JobRegistry
from quickdapp.queue.schedules import DEFAULT_JOBS
from tests.helpers.chain import chain_settings

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
