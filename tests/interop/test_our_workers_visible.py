"""Node BullMQ and Bull Board see our workers, and jobs our workers take carry `processedBy`.

Both need the worker engine to do what Node's Worker does: name its blocking connection
`bull:<base64(queue)>:w:<name>` (one named connection per worker, so Node counts it once) and
pass the worker's name to moveToActive. Python bullmq 3.4.4's Worker names its connections
`bull:jobs:w:<name>`, which Node's getWorkers does not match, and never passes the name, so
with it both tests fail.
"""

from __future__ import annotations

import base64

import httpx

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from tests.helpers.workers import StartWorker
from tests.interop.dashboard import overview
from tests.interop.node_side import NodeOps

NODE_NAMED_WORKER = f"bull:{base64.b64encode(b'jobs').decode()}:w:"


async def our_worker_names(settings: Settings, app: ServerApp) -> list[str]:
    """Our live workers' names, as our dashboard lists them."""
    return sorted(worker["name"] for worker in (await overview(settings, app))["workers"])


async def test_node_and_bull_board_list_our_workers_by_name(
    settings: Settings,
    app: ServerApp,
    start_worker: StartWorker,
    node_ops: NodeOps,
    bull_board: httpx.AsyncClient,
) -> None:
    await start_worker()
    ours = await our_worker_names(settings, app)
    assert len(ours) == 1, ours

    clients = await node_ops.one({"op": "getWorkers"})
    seen_by_node = sorted(c["rawname"].removeprefix(NODE_NAMED_WORKER) for c in clients)
    board_workers = (await bull_board.get("/api/queues/jobs/workers")).json()["workers"]
    seen_by_board = sorted(worker["name"] for worker in board_workers)  # the name after ":w:"
    [queue] = (await bull_board.get("/api/queues")).json()["queues"]

    assert seen_by_node == ours, f"Node's getWorkers() lists {clients}; our workers are {ours}"
    assert seen_by_board == ours
    assert queue["hasWorkers"] is True


async def test_jobs_our_workers_take_carry_processed_by(
    settings: Settings,
    app: ServerApp,
    start_worker: StartWorker,
    node_ops: NodeOps,
    bull_board: httpx.AsyncClient,
) -> None:
    await start_worker()
    [ours] = await our_worker_names(settings, app)
    job_id = await app.queue_manager.submit_job("echo", {"value": "who"})
    assert (await app.queue_manager.wait_until_finished(job_id, 10))["state"] == "completed"

    job = await node_ops.one({"op": "getJob", "id": job_id})
    response = await bull_board.get(
        "/api/queues", params={"activeQueue": "jobs", "status": "completed", "page": 1}
    )
    [shown] = response.json()["queues"][0]["jobs"]

    assert job["processedBy"] == ours
    assert shown["id"] == job_id and shown["processedBy"] == ours
