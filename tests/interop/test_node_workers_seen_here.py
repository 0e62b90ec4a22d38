"""Our health (QueueManager.get_health, `quickdapp health`) and the dashboard count Node
BullMQ workers beside ours: a queue served only by Node workers is not 'without workers'."""

from __future__ import annotations

import asyncio
import json
import os
import socket

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from tests.helpers.processes import quickdapp_command, quickdapp_env
from tests.helpers.waiting import eventually
from tests.helpers.workers import StartWorker
from tests.interop.conftest import StartNodeWorker
from tests.interop.dashboard import overview

NO_WORKER = "no worker is connected to the queue: jobs will wait"


async def test_health_and_dashboard_count_node_workers_beside_ours(
    app: ServerApp, settings: Settings, start_node_worker: StartNodeWorker, start_worker: StartWorker
) -> None:
    manager = app.queue_manager
    assert NO_WORKER in (await manager.get_health()).warnings  # the control: nobody yet
    named, unnamed = start_node_worker("node-health"), start_node_worker(None)
    await named.ready()
    await unnamed.ready()

    health = await manager.get_health()
    assert health.workers == 2
    assert NO_WORKER not in health.warnings
    page = await overview(settings, app)
    assert sorted(w["name"] for w in page["workers"]) == ["(unnamed)", "node-health"]
    assert NO_WORKER not in page["warnings"]

    await start_worker()
    assert (await manager.get_health()).workers == 3
    ours = f"{socket.gethostname()}:{os.getpid()}:"  # default_worker_name()
    names = [w["name"] for w in (await overview(settings, app))["workers"]]
    assert [name for name in names if name.startswith(ours)] != [], names

    named.stop()

    async def two_left() -> bool:
        return (await manager.get_health()).workers == 2

    await eventually(two_left, 10, "the stopped Node worker to leave the count")
    names = sorted(w["name"] for w in (await overview(settings, app))["workers"])
    assert "node-health" not in names and "(unnamed)" in names and len(names) == 2


async def test_quickdapp_health_counts_a_node_worker_alone(
    settings: Settings, start_node_worker: StartNodeWorker
) -> None:
    await start_node_worker("node-alone").ready()

    health = await asyncio.create_subprocess_exec(
        *quickdapp_command("health"),
        stdout=asyncio.subprocess.PIPE,
        env=quickdapp_env(settings),
    )
    out, _ = await asyncio.wait_for(health.communicate(), 30)

    assert health.returncode == 0
    report = json.loads(out)
    assert report["workers"] == 1
    assert NO_WORKER not in report["warnings"]
