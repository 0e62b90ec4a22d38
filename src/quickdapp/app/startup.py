"""What every start of a server does to the queue: the default schedules and one-off jobs."""

from __future__ import annotations

from quickdapp.app.chain_health import submit_deploy_multicall3
from quickdapp.app.server_app import ServerApp
from quickdapp.queue.schedules import setup_default_jobs


async def on_start(app: ServerApp) -> None:
    """Idempotent: any number of starts, from any number of processes, leave the same queue."""
    await setup_default_jobs(app.queue_manager, app.settings)
    await submit_deploy_multicall3(app)
