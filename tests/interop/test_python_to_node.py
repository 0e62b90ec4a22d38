"""Jobs added here (QueueManager, the CLI) run on a Node BullMQ Worker as intended: priority
order, delay, attempts and backoff, and job schedulers on a cron pattern or `every` N ms."""

from __future__ import annotations

import asyncio
import itertools

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from tests.helpers.processes import quickdapp_command, quickdapp_env
from tests.interop.conftest import StartNodeWorker
from tests.interop.node_side import NodeOps


async def test_node_worker_runs_our_jobs_in_priority_order_with_our_options(
    app: ServerApp, settings: Settings, start_node_worker: StartNodeWorker
) -> None:
    manager = app.queue_manager
    # Submitted least urgent first: BullMQ runs the lowest priority number first.
    submitted = {
        "cleanupAuditLog": await manager.submit_job("cleanupAuditLog", {"retentionDays": 30}, 7),
        "deployMulticall3": await manager.submit_job("deployMulticall3", {}),
        "watchChain": await manager.submit_job("watchChain", {"fromBlock": 12}),
    }

    worker = start_node_worker("node-priorities", concurrency=1)
    for job_id in submitted.values():
        await worker.finished(job_id)

    runs = [run["job"] for run in worker.runs()]
    assert [job["name"] for job in runs] == ["watchChain", "deployMulticall3", "cleanupAuditLog"]
    assert [job["id"] for job in runs] == [
        submitted["watchChain"],
        submitted["deployMulticall3"],
        submitted["cleanupAuditLog"],
    ]
    watch, deploy, cleanup = runs
    assert [watch["priority"], deploy["priority"], cleanup["priority"]] == [1, 5, 10]
    # The payload form and the options as Node reads them.
    assert cleanup["data"] == {"userId": 7, "data": {"retentionDays": 30, "batchSize": 5000}}
    assert watch["data"] == {"userId": None, "data": {"fromBlock": 12}}
    assert cleanup["opts"]["attempts"] == settings.worker_queue_job_attempts
    assert cleanup["opts"]["backoff"] == {"type": "exponential", "delay": 2000}  # README
    assert all(job["processedBy"] == "node-priorities" for job in runs)


async def test_node_worker_waits_out_the_delay_of_a_job_from_quickdapp_submit(
    settings: Settings, start_node_worker: StartNodeWorker, node_ops: NodeOps
) -> None:
    worker = start_node_worker()
    await worker.ready()
    submit = await asyncio.create_subprocess_exec(
        *quickdapp_command("submit", "echo", '{"value": "later"}', "--delay", "1200"),
        stdout=asyncio.subprocess.PIPE,
        env=quickdapp_env(settings),
    )
    out, _ = await asyncio.wait_for(submit.communicate(), 30)
    assert submit.returncode == 0
    job_id = out.decode().strip()

    finished = await worker.finished(job_id)

    [run] = worker.runs(job_id)
    job = run["job"]
    assert job["opts"]["delay"] == 1200 and job["data"] == {"userId": None, "data": {"value": "later"}}
    # Not before its time; well within a second after it on this noisy machine.
    assert 1200 <= job["processedOn"] - job["timestamp"] < 2200
    assert finished["job"]["returnvalue"] == {"ranOn": "node", "name": "echo"}
    [outcome] = await node_ops({"op": "waitUntilFinished", "id": job_id, "timeoutMs": 5000})
    assert outcome == {"state": "completed", "returnvalue": {"ranOn": "node", "name": "echo"}}


async def test_node_worker_retries_with_our_attempts_and_exponential_backoff(
    app: ServerApp, start_node_worker: StartNodeWorker
) -> None:
    worker = start_node_worker()
    await worker.ready()
    job_id = await app.queue_manager.submit_job(
        "flaky", {"failures": 2}, attempts=3, backoff={"type": "exponential", "delay": 300}
    )

    finished = await worker.finished(job_id)

    assert finished["event"] == "completed"
    assert finished["job"]["attemptsMade"] == 3
    failures = [e for e in worker.select(lambda e: e["event"] == "failed") if e["job"]["id"] == job_id]
    starts = worker.runs(job_id)
    assert [s["job"]["attemptsMade"] for s in starts] == [0, 1, 2]
    assert starts[0]["job"]["opts"]["backoff"] == {"type": "exponential", "delay": 300}
    assert [f["job"]["failedReason"] for f in failures] == [
        "node flaky failure (attempt 1)",
        "node flaky failure (attempt 2)",
    ]
    # Exponential from 300 ms: the second wait doubles the first. A wait starts when the
    # attempt before fails, so the gap between two starts is at least the wait.
    first_gap, second_gap = (
        later["job"]["processedOn"] - earlier["job"]["processedOn"]
        for earlier, later in itertools.pairwise(starts)
    )
    assert 300 <= first_gap < 1300, first_gap
    assert 600 <= second_gap < 1600, second_gap


async def test_node_worker_runs_our_cron_and_every_schedulers(
    app: ServerApp, start_node_worker: StartNodeWorker, node_ops: NodeOps
) -> None:
    worker = start_node_worker()
    await worker.ready()
    manager = app.queue_manager
    await manager.schedule_cron_job("echo", "* * * * * *", {"value": "cron"}, key="each-second")
    await manager.schedule_every_job("echo", 400, {"value": "every"}, key="each-400ms")

    schedulers = {s["key"]: s for s in await node_ops.one({"op": "getJobSchedulers"})}
    assert schedulers["each-second"]["pattern"] == "* * * * * *"
    assert schedulers["each-400ms"]["every"] == 400
    assert schedulers["each-400ms"]["template"]["data"] == {"userId": None, "data": {"value": "every"}}
    cron = await worker.wait_for(
        lambda e: e["event"] == "start" and e["job"]["repeatJobKey"] == "each-second",
        "two runs of the cron scheduler",
        count=2,
    )
    every = await worker.wait_for(
        lambda e: e["event"] == "start" and e["job"]["repeatJobKey"] == "each-400ms",
        "two runs of the every scheduler",
        count=2,
    )

    # Run ids carry their scheduled time: ours wrote the first, the Node worker the next, on
    # the same grid (a run that starts late makes Node skip the slots already past).
    cron_times = [_run_millis(run) for run in cron]
    every_times = [_run_millis(run) for run in every]
    assert all(t % 1000 == 0 for t in cron_times), cron_times
    assert cron_times[1] > cron_times[0]
    assert every_times[1] > every_times[0] and (every_times[1] - every_times[0]) % 400 == 0, every_times
    assert cron[0]["job"]["data"] == {"userId": None, "data": {"value": "cron"}}
    assert every[1]["job"]["data"] == {"userId": None, "data": {"value": "every"}}


def _run_millis(event: dict[str, object]) -> int:
    job = event["job"]
    assert isinstance(job, dict)
    return int(str(job["id"]).rsplit(":", 1)[1])
