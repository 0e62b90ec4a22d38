"""What every start of a server does to the queue: the default schedules and one-off jobs."""

from __future__ import annotations

import logging

from quickdapp.app.server_app import ServerApp
from quickdapp.jobs.deploy_multicall3 import STARTUP_JOB_ID
from quickdapp.queue.schedules import setup_default_jobs

logger = logging.getLogger(__name__)

NO_CHAIN = (
    "no chain is configured (CHAIN_RPC_URL is not set): watchChain and deployMulticall3 are "
    "not scheduled"
)


async def on_start(app: ServerApp) -> None:
    """Idempotent: any number of starts, from any number of processes, leave the same queue."""
    await setup_default_jobs(app.queue_manager, app.settings)
    await submit_deploy_multicall3(app)


async def submit_deploy_multicall3(app: ServerApp) -> None:
    """With a chain configured, queue deployMulticall3 once: a fixed job id, so restarts and
    several servers queue it a single time. (watchChain's schedule is a default job.)"""
    if app.chain is None:
        logger.info("%s", NO_CHAIN)
        return
    job_id = await app.queue_manager.submit_job("deployMulticall3", {}, job_id=STARTUP_JOB_ID)
    logger.info("chain jobs: deployMulticall3 queued once as %s", job_id)
