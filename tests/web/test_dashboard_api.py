"""The dashboard's JSON API against real Redis and PostgreSQL: every view and every action."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from bullmq import Job
from fastapi import FastAPI

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.web.auth import admin_credentials
from quickdapp.web.dashboard import create_dashboard
from tests.helpers.waiting import audit_stored, eventually
from tests.helpers.workers import StartWorker
from tests.web.conftest import API


async def _wait_for_state(app: ServerApp, job_id: str, state: str, timeout: float = 30) -> None:
    async def reached() -> bool:
        return await app.queue_manager.inspect.state(job_id) == state

    await eventually(reached, timeout, f"job {job_id} to be {state}")


async def _failed_job(app: ServerApp, failures: int = 1) -> str:
    """A flaky job that failed its one attempt and succeeds on the next."""
    job_id = await app.queue_manager.submit_job("flaky", {"failures": failures}, attempts=1)
    await _wait_for_state(app, job_id, "failed")
    return job_id


async def test_overview_shows_counts_paused_flag_schedulers_and_job_types(
    admin: httpx.AsyncClient, app: ServerApp
) -> None:
    manager = app.queue_manager
    await manager.submit_job("echo", {"value": 1})
    await manager.submit_job("echo", {"value": 2}, delay=60_000)
    await manager.schedule_cron_job("cleanupAuditLog", "0 3 * * *", {"retentionDays": 30})

    body = (await admin.get(f"{API}/overview")).json()

    health = await manager.get_health()
    assert body["counts"] == health.counts
    # The scheduler's next run waits as a delayed job too.
    assert body["counts"]["prioritized"] == 1 and body["counts"]["delayed"] == 2
    assert body["paused"] is False
    assert body["workers"] == []
    assert "no worker is connected to the queue: jobs will wait" in body["warnings"]
    [scheduler] = body["schedulers"]
    assert scheduler["key"] == "cleanupAuditLog" and scheduler["pattern"] == "0 3 * * *"
    assert datetime.fromisoformat(scheduler["next_run"]) > datetime.now(UTC)
    types = {t["name"]: t for t in body["job_types"]}
    assert types["watchChain"]["priority"] == 1
    assert "retentionDays" in types["cleanupAuditLog"]["data_schema"]["properties"]


async def test_overview_lists_the_live_worker_by_name(
    admin: httpx.AsyncClient, start_worker: StartWorker
) -> None:
    # Two workers in one process are covered with two processes in test_metrics.py.
    await start_worker()

    async def named() -> dict[str, Any] | None:  # a worker names its two connections once its loop runs
        body: dict[str, Any] = (await admin.get(f"{API}/overview")).json()
        return body if body["workers"] and len(body["workers"][0]["addresses"]) == 2 else None

    body = await eventually(named, 30, "the worker's two named connections")
    [worker] = body["workers"]
    host, pid, suffix = worker["name"].split(":")
    assert host and int(pid) == os.getpid() and len(suffix) == 6
    # One entry for the worker's two connections (commands and blocking pops).
    assert len(worker["addresses"]) == 2
    assert not any("no worker" in warning for warning in body["warnings"])


async def test_job_lists_are_paginated_per_state(admin: httpx.AsyncClient, app: ServerApp) -> None:
    ids = [await app.queue_manager.submit_job("echo", {"value": i}) for i in range(25)]

    first = (await admin.get(f"{API}/jobs", params={"state": "prioritized", "page_size": 20})).json()
    second = (
        await admin.get(f"{API}/jobs", params={"state": "prioritized", "page": 2, "page_size": 20})
    ).json()

    assert first["total"] == second["total"] == 25
    assert len(first["jobs"]) == 20 and len(second["jobs"]) == 5
    listed = [j["id"] for j in first["jobs"] + second["jobs"]]
    assert sorted(listed) == sorted(ids)
    assert all(j["state"] == "prioritized" and j["type"] == "echo" for j in first["jobs"])
    empty = (await admin.get(f"{API}/jobs", params={"state": "failed"})).json()
    assert empty["total"] == 0 and empty["jobs"] == []
    assert (await admin.get(f"{API}/jobs", params={"state": "nonsense"})).status_code == 422


async def test_job_detail_has_data_options_attempts_reason_stacktrace_and_times(
    admin: httpx.AsyncClient, app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    job_id = await app.queue_manager.submit_job(
        "flaky", {"failures": 3, "message": "boom"}, user_id=7, attempts=1
    )
    await _wait_for_state(app, job_id, "failed")

    job = (await admin.get(f"{API}/jobs/{job_id}")).json()

    assert job["id"] == job_id and job["type"] == "flaky" and job["state"] == "failed"
    assert job["user_id"] == 7
    assert job["data"] == {"failures": 3, "message": "boom"}
    assert job["options"]["attempts"] == 1 and job["max_attempts"] == 1
    assert job["attempts_made"] == 1
    assert job["failed_reason"] == "boom (attempt 1)"
    assert any("RuntimeError: boom (attempt 1)" in trace for trace in job["stacktrace"])
    assert job["created_at"] <= job["processed_at"] <= job["finished_at"]
    assert job["logs"] == []
    await Job.addJobLog(app.queue_manager.queue, job_id, "checked block 12")
    logged = (await admin.get(f"{API}/jobs/{job_id}")).json()
    assert logged["logs"] == ["checked block 12"]
    missing = await admin.get(f"{API}/jobs/no-such-job")
    assert missing.status_code == 404


async def test_completed_job_detail_shows_the_return_value(
    admin: httpx.AsyncClient, app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    job_id = await app.queue_manager.submit_job("echo", {"value": {"answer": 42}})
    await app.queue_manager.wait_until_finished(job_id, 10)

    job = (await admin.get(f"{API}/jobs/{job_id}")).json()
    assert job["state"] == "completed"
    assert job["return_value"] == {"answer": 42}
    assert job["failed_reason"] is None


async def test_add_job_validates_like_submit_job(admin: httpx.AsyncClient, app: ServerApp) -> None:
    made = await admin.post(
        f"{API}/jobs", json={"type": "cleanupAuditLog", "data": {"retentionDays": 9}, "user_id": 3}
    )
    assert made.status_code == 201
    job = await app.queue_manager.queue.getJob(made.json()["id"])
    assert job.name == "cleanupAuditLog"
    assert job.data == {"userId": 3, "data": {"retentionDays": 9, "batchSize": 5000}}
    assert job.opts["priority"] == 10

    delayed = await admin.post(f"{API}/jobs", json={"type": "echo", "delay_ms": 60_000})
    assert await app.queue_manager.queue.getJobState(delayed.json()["id"]) == "delayed"


async def test_bad_job_data_is_refused_and_nothing_is_enqueued(
    admin: httpx.AsyncClient, app: ServerApp
) -> None:
    bad = [
        ({"type": "cleanupAuditLog", "data": {"retentionDays": "30"}}, "retentionDays"),
        ({"type": "cleanupAuditLog", "data": {"retentionDays": 0}}, "retentionDays"),
        ({"type": "cleanupAuditLog", "data": {"retentionDays": 5, "extra": 1}}, "extra"),
        ({"type": "noSuchType", "data": {}}, "unknown job type"),
    ]
    for body, mentioned in bad:
        response = await admin.post(f"{API}/jobs", json=body)
        assert response.status_code == 422, body
        assert mentioned in response.json()["detail"]
    negative_delay = await admin.post(f"{API}/jobs", json={"type": "echo", "delay_ms": -1})
    assert negative_delay.status_code == 422
    health = await app.queue_manager.get_health()
    assert sum(health.counts.values()) == 0


async def test_bulk_add_validates_every_job_and_adds_all_or_none(
    admin: httpx.AsyncClient, app: ServerApp
) -> None:
    jobs = [{"type": "echo", "data": {"value": i}, "user_id": i} for i in range(3)]
    bad = await admin.post(
        f"{API}/jobs/bulk", json={"jobs": [*jobs, {"type": "cleanupAuditLog", "data": {}}]}
    )
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("jobs[3]: invalid data for job type 'cleanupAuditLog'")
    too_large = {"type": "echo", "data": {"value": "x" * app.settings.max_job_payload_bytes}}
    assert (await admin.post(f"{API}/jobs/bulk", json={"jobs": [too_large]})).status_code == 413
    assert (await admin.post(f"{API}/jobs/bulk", json={"jobs": []})).status_code == 422
    health = await app.queue_manager.get_health()
    assert sum(health.counts.values()) == 0

    made = await admin.post(f"{API}/jobs/bulk", json={"jobs": jobs})
    assert made.status_code == 201
    ids = made.json()["ids"]
    assert len(set(ids)) == 3
    job = await app.queue_manager.inspect.job(ids[2])
    assert job is not None and job.data == {"userId": 2, "data": {"value": 2}}


async def test_retry_one_failed_job_runs_it_again(
    admin: httpx.AsyncClient, app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    job_id = await _failed_job(app)

    response = await admin.post(f"{API}/jobs/{job_id}/retry")

    assert response.status_code == 200
    await _wait_for_state(app, job_id, "completed")
    job = await app.queue_manager.queue.getJob(job_id)
    assert job.returnvalue == {"succeeded_on_attempt": 2}
    again = await admin.post(f"{API}/jobs/{job_id}/retry")
    assert again.status_code == 409
    assert "is completed, not failed" in again.json()["detail"]
    assert (await admin.post(f"{API}/jobs/nothing/retry")).status_code == 404


async def test_retry_all_failed(
    admin: httpx.AsyncClient, app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    ids = [await _failed_job(app) for _ in range(3)]

    response = await admin.post(f"{API}/retry-failed")

    assert response.json() == {"ok": True, "count": 3}
    for job_id in ids:
        await _wait_for_state(app, job_id, "completed")


async def test_promote_a_delayed_job(
    admin: httpx.AsyncClient, app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    job_id = await app.queue_manager.submit_job("echo", {"value": "now"}, delay=3_600_000)
    assert (await admin.post(f"{API}/jobs/{job_id}/promote")).status_code == 200
    outcome = await app.queue_manager.wait_until_finished(job_id, 10)
    assert outcome["returnvalue"] == "now"
    assert (await admin.post(f"{API}/jobs/{job_id}/promote")).status_code == 409


async def test_remove_a_job(admin: httpx.AsyncClient, app: ServerApp) -> None:
    job_id = await app.queue_manager.submit_job("echo", {})
    assert (await admin.delete(f"{API}/jobs/{job_id}")).status_code == 200
    assert await app.queue_manager.queue.getJob(job_id) is None
    assert (await admin.get(f"{API}/jobs/{job_id}")).status_code == 404
    assert (await admin.delete(f"{API}/jobs/{job_id}")).status_code == 404


async def test_clean_a_state(
    admin: httpx.AsyncClient, app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    for i in range(4):
        await app.queue_manager.wait_until_finished(
            await app.queue_manager.submit_job("echo", {"value": i}), 10
        )
    waiting = await app.queue_manager.submit_job("echo", {}, delay=3_600_000)

    response = await admin.post(f"{API}/clean", json={"state": "completed", "grace_ms": 0})

    assert response.json() == {"ok": True, "count": 4}
    counts = (await app.queue_manager.get_health()).counts
    assert counts["completed"] == 0 and counts["delayed"] == 1
    assert await app.queue_manager.queue.getJob(waiting) is not None
    bad = await admin.post(f"{API}/clean", json={"state": "active"})
    assert bad.status_code == 422


async def test_pause_and_resume(
    admin: httpx.AsyncClient, app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker()
    assert (await admin.post(f"{API}/pause")).status_code == 200
    assert (await admin.get(f"{API}/overview")).json()["paused"] is True
    job_id = await app.queue_manager.submit_job("echo", {})
    await asyncio.sleep(0.5)  # time passing is the point: the idle worker leaves the job alone
    assert await app.queue_manager.queue.getJobState(job_id) != "completed"

    assert (await admin.post(f"{API}/resume")).status_code == 200
    assert (await admin.get(f"{API}/overview")).json()["paused"] is False
    await app.queue_manager.wait_until_finished(job_id, 10)


async def test_audit_history_filters_and_metrics_with_a_series(
    admin: httpx.AsyncClient, app: ServerApp, start_worker: StartWorker
) -> None:
    await start_worker(worker_queue_concurrency=4)
    manager = app.queue_manager
    ids = [await manager.submit_job("echo", {"value": i}, user_id=1) for i in range(3)]
    ids += [await manager.submit_job("flaky", {"failures": 5}, user_id=2, attempts=1)]
    for job_id in ids:
        await manager.wait_until_finished(job_id, 10)
    await audit_stored(app.redis)

    everything = (await admin.get(f"{API}/audit/history")).json()
    assert everything["total"] == 4
    failed = (await admin.get(f"{API}/audit/history", params={"status": "failed"})).json()
    assert [row["type"] for row in failed["items"]] == ["flaky"]
    assert "flaky failure (attempt 1)" in failed["items"][0]["error"]
    by_user = (await admin.get(f"{API}/audit/history", params={"user_id": 1, "type": "echo"})).json()
    assert by_user["total"] == 3
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = (await admin.get(f"{API}/audit/history", params={"since": future})).json()
    assert later["total"] == 0

    metrics = (await admin.get(f"{API}/audit/metrics", params={"buckets": 12})).json()
    types = {m["type"]: m for m in metrics["types"]}
    assert types["echo"]["count"] == 3 and types["echo"]["success_rate"] == 1.0
    assert types["flaky"]["failed"] == 1 and types["flaky"]["success_rate"] == 0.0
    assert types["echo"]["p50_ms"] <= types["echo"]["p95_ms"]
    assert metrics["bucket_seconds"] == 300
    assert sum(p["completed"] for p in metrics["series"]) == 3
    assert sum(p["failed"] for p in metrics["series"]) == 1
    starts = [p["start"] for p in metrics["series"]]
    assert starts == sorted(starts) and len(starts) in (12, 13)


async def test_the_api_is_documented_in_openapi(admin: httpx.AsyncClient) -> None:
    schema = (await admin.get("/admin/queues/api/openapi.json")).json()
    paths = schema["paths"]
    for path in [
        "/api/overview",
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/retry",
        "/api/jobs/{job_id}/promote",
        "/api/retry-failed",
        "/api/clean",
        "/api/pause",
        "/api/resume",
        "/api/audit/history",
        "/api/audit/metrics",
    ]:
        assert path in paths, path
    assert set(paths["/api/jobs/{job_id}"]) == {"get", "delete"}
    assert set(paths["/api/jobs"]) == {"get", "post"}
    assert set(schema["components"]["securitySchemes"]) == {"HTTPBasic", "HTTPBearer"}
    assert paths["/api/pause"]["post"]["security"] == [{"HTTPBasic": []}, {"HTTPBearer": []}]
    # No Swagger UI page (it would need scripts the CSP forbids): the schema is the docs.
    assert (await admin.get("/admin/queues/api/docs")).status_code == 404


async def test_the_page_uses_only_relative_urls(admin: httpx.AsyncClient) -> None:
    page = (await admin.get("/admin/queues/")).text
    script = (await admin.get("/admin/queues/static/app.js")).text
    assert 'href="static/style.css"' in page and 'src="static/app.js"' in page
    assert 'fetch("api/" + path' in script
    for text in (page, script):
        assert '"/admin' not in text and "'/admin" not in text and 'href="/' not in text
    redirect = await admin.get("/admin/queues", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == "queues/"


async def test_the_dashboard_works_mounted_under_another_prefix(
    app: ServerApp, settings: Settings
) -> None:
    """As behind a reverse proxy that serves it under a sub-path."""
    outer = FastAPI()
    dashboard = create_dashboard(admin_credentials(settings))
    dashboard.state.server = app
    outer.mount("/ops/jobs-board", dashboard)
    transport = httpx.ASGITransport(app=outer)
    auth = (settings.admin_username, settings.admin_password)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy", auth=auth) as client:
        page = await client.get("/ops/jobs-board/")
        script = await client.get("/ops/jobs-board/static/app.js")
        overview = await client.get("/ops/jobs-board/api/overview")
        paused = await client.post("/ops/jobs-board/api/pause", headers={"Origin": "http://proxy"})
    assert page.status_code == script.status_code == overview.status_code == 200
    assert overview.json()["queue"] == "jobs"
    assert paused.status_code == 200 and await app.queue_manager.queue.isPaused()
