"""Jobs added by Node (Queue.add with the {userId, data} payload, upsertJobScheduler) run on
our workers: typed validation and an audit row per attempt as usual, in priority order, after
their delay, retried with their attempts and backoff. Unknown names and malformed payloads
fail at once with a reason Node reads from waitUntilFinished."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from quickdapp.app.server_app import ServerApp
from tests.helpers.workers import StartWorker
from tests.interop.audit import audit_rows
from tests.interop.node_side import NodeOps


def add(name: str, data: Any, **opts: Any) -> dict[str, Any]:
    return {"op": "add", "name": name, "data": data, "opts": opts}


def payload(data: Any, user_id: int | None = None) -> dict[str, Any]:
    return {"userId": user_id, "data": data}


async def test_node_jobs_run_here_in_priority_order_with_an_audit_row_each(
    app: ServerApp, start_worker: StartWorker, node_ops: NodeOps
) -> None:
    # Added while no worker runs; a job without priority runs before every prioritized one.
    added = await node_ops(
        add("cleanupAuditLog", payload({"retentionDays": 30}, user_id=5), priority=10),
        add("echo", payload({"value": "p3"}), priority=3),
        add("echo", payload({"value": "none"})),
        add("echo", payload({"value": "p1"}), priority=1),
        add("echo", payload({"value": "p2"}, user_id=6), priority=2),
    )
    cleanup, p3, none, p1, p2 = (job["id"] for job in added)

    await start_worker()
    rows = await audit_rows(app, 5, "the audit rows of the 5 Node jobs")

    assert [row.job_id for row in rows] == [none, p1, p2, p3, cleanup]
    assert all(row.status == "completed" and row.attempt == 1 for row in rows)
    assert [row.result for row in rows[:4]] == ["none", "p1", "p2", "p3"]
    by_id = {row.job_id: row for row in rows}
    # Typed validation as usual: the handler ran on the parsed model, the row keeps what was sent.
    assert by_id[cleanup].type == "cleanupAuditLog" and by_id[cleanup].user_id == 5
    assert by_id[cleanup].data == {"retentionDays": 30}
    result = by_id[cleanup].result
    assert isinstance(result, dict)
    cutoff = datetime.fromisoformat(result["cutoff"])
    assert abs(cutoff - (by_id[cleanup].started_at - timedelta(days=30))) < timedelta(minutes=1)
    assert by_id[p2].user_id == 6 and by_id[p2].data == {"value": "p2"}


async def test_node_delayed_job_runs_here_after_its_delay(
    app: ServerApp, start_worker: StartWorker, node_ops: NodeOps
) -> None:
    await start_worker()

    [job, outcome, after] = await node_ops(
        add("echo", payload({"value": "later"}, user_id=3), delay=1000),
        {"op": "waitUntilFinished", "id": "1", "timeoutMs": 10_000},
        {"op": "getJob", "id": "1"},
    )

    assert job == {"id": "1"}
    assert outcome == {"state": "completed", "returnvalue": "later"}
    assert 1000 <= after["processedOn"] - after["timestamp"] < 2000
    [row] = await audit_rows(app, 1, "the delayed job's audit row")
    assert (row.job_id, row.user_id, row.status, row.result) == ("1", 3, "completed", "later")


async def test_node_job_is_retried_here_with_its_attempts_and_exponential_backoff(
    app: ServerApp, start_worker: StartWorker, node_ops: NodeOps
) -> None:
    await start_worker()

    [_, outcome, after] = await node_ops(
        add(
            "flaky", payload({"failures": 2}), attempts=3, backoff={"type": "exponential", "delay": 300}
        ),
        {"op": "waitUntilFinished", "id": "1", "timeoutMs": 15_000},
        {"op": "getJob", "id": "1"},
    )

    assert outcome == {"state": "completed", "returnvalue": {"succeeded_on_attempt": 3}}
    assert after["attemptsMade"] == 3
    rows = await audit_rows(app, 3, "an audit row per attempt")
    assert [(row.attempt, row.status) for row in rows] == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
    ]
    assert "flaky failure (attempt 1)" in (rows[0].error or "")
    # Each wait starts when the attempt before fails: 300 ms, then 600 ms.
    waits = [(b.started_at - a.completed_at).total_seconds() for a, b in itertools.pairwise(rows)]
    assert 0.3 <= waits[0] < 1.3, waits
    assert 0.6 <= waits[1] < 1.6, waits


async def test_node_cron_and_every_schedulers_run_here(
    app: ServerApp, start_worker: StartWorker, node_ops: NodeOps
) -> None:
    await start_worker()

    await node_ops(
        {
            "op": "upsertJobScheduler",
            "key": "node-cron",
            "repeat": {"pattern": "* * * * * *"},
            "template": {"name": "echo", "data": payload({"value": "cron"})},
        },
        {
            "op": "upsertJobScheduler",
            "key": "node-every",
            "repeat": {"every": 400},
            "template": {"name": "echo", "data": payload({"value": "every"}, user_id=9)},
        },
    )

    cron = await audit_rows(
        app, 2, "two runs of Node's cron scheduler", lambda r: r.job_id.startswith("repeat:node-cron:")
    )
    every = await audit_rows(
        app, 2, "two runs of Node's every scheduler", lambda r: r.job_id.startswith("repeat:node-every:")
    )

    # Node wrote the first run, our worker the next ones, on the grid Node set.
    cron_times = [int(row.job_id.rsplit(":", 1)[1]) for row in cron[:2]]
    every_times = [int(row.job_id.rsplit(":", 1)[1]) for row in every[:2]]
    assert all(t % 1000 == 0 for t in cron_times) and cron_times[1] > cron_times[0], cron_times
    assert every_times[1] > every_times[0] and (every_times[1] - every_times[0]) % 400 == 0, every_times
    assert all(row.status == "completed" and row.result == "cron" for row in cron)
    assert all(row.user_id == 9 and row.result == "every" for row in every)


async def test_unknown_names_and_malformed_payloads_fail_at_once_with_a_reason_node_reads(
    app: ServerApp, start_worker: StartWorker, node_ops: NodeOps
) -> None:
    await start_worker()
    cases = [
        add("noSuchJob", payload({}), attempts=3),
        add("cleanupAuditLog", {"retentionDays": 30}, attempts=3),  # no {userId, data} wrapper
        add("cleanupAuditLog", payload({"retentionDays": 0}), attempts=3),
        add("echo", "just a string", attempts=3),
    ]
    ids = [job["id"] for job in await node_ops(*cases)]

    outcomes = await node_ops(
        *({"op": "waitUntilFinished", "id": job_id, "timeoutMs": 10_000} for job_id in ids)
    )
    jobs = await node_ops(*({"op": "getJob", "id": job_id} for job_id in ids))

    assert all(outcome["state"] == "failed" for outcome in outcomes), outcomes
    unknown, unwrapped, invalid, string = (outcome["failedReason"] for outcome in outcomes)
    assert unknown.startswith("unknown job type 'noSuchJob'; known types: ")
    assert unwrapped == (
        "job payload is not in the {userId, data} form: unexpected keys retentionDays; "
        'send {"userId": <integer or null>, "data": {<the job\'s fields>}}'
    )
    assert invalid == (
        "invalid data for job type 'cleanupAuditLog': retentionDays: "
        "Input should be greater than or equal to 1"
    )
    assert string.startswith("job payload is not in the {userId, data} form: got a string")
    # Another attempt cannot help: each failed on its first.
    assert [job["attemptsMade"] for job in jobs] == [1, 1, 1, 1]

    rows = {row.job_id: row for row in await audit_rows(app, 4, "the 4 failures' audit rows")}
    assert all(row.status == "failed" and row.attempt == 1 for row in rows.values())
    # The audit row keeps what was sent when it is not in the {userId, data} form.
    assert rows[ids[1]].data == {"retentionDays": 30}
    assert rows[ids[3]].data == "just a string"
    assert rows[ids[2]].data == {"retentionDays": 0}
    assert "not in the {userId, data} form" in (rows[ids[1]].error or "")


async def test_a_node_job_without_payload_runs_with_its_type_defaults(
    app: ServerApp, start_worker: StartWorker, node_ops: NodeOps
) -> None:
    await start_worker()

    # queue.add(name) stores {}, queue.add(name, null) null: neither has fields to validate.
    [_, _, empty, null] = await node_ops(
        {"op": "add", "name": "echo"},
        {"op": "add", "name": "echo", "data": None},
        {"op": "waitUntilFinished", "id": "1", "timeoutMs": 10_000},
        {"op": "waitUntilFinished", "id": "2", "timeoutMs": 10_000},
    )

    assert empty == null == {"state": "completed", "returnvalue": None}
    rows = await audit_rows(app, 2, "the two audit rows")
    assert [(row.status, row.user_id) for row in rows] == [("completed", None)] * 2
