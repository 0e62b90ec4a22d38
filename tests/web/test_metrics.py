"""/metrics: job counters from two worker processes add up; queue depths match get_health()."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.metrics import FLUSH_S, mark_process_dead, prepare_metrics_dir
from quickdapp.web.app import create_app
from tests.helpers.processes import QuickdappProcess, StartQuickdapp
from tests.helpers.waiting import eventually
from tests.helpers.workers import idle_on_redis

WORKER_START_TIMEOUT = 30


def _start_worker(start_quickdapp: StartQuickdapp, metrics_dir: Path) -> QuickdappProcess:
    """A `quickdapp worker` process writing its metrics files into `metrics_dir`."""
    return start_quickdapp(
        "worker",
        metrics_dir=str(metrics_dir),
        worker_queue_concurrency=4,
        worker_queue_job_attempts=1,
        log_level="WARNING",
    )


async def _wait_for_workers(app: ServerApp, count: int) -> None:
    async def connected() -> bool:
        return len(await app.queue_manager.inspect.live_workers()) >= count

    await eventually(connected, WORKER_START_TIMEOUT, f"{count} workers to connect")


async def _scrape(settings: Settings, app: ServerApp, metrics_dir: Path) -> dict[str, float]:
    web = create_app(settings.model_copy(update={"metrics_dir": str(metrics_dir)}), app)
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


async def _scraped(
    settings: Settings, app: ServerApp, metrics_dir: Path, attempts: int
) -> dict[str, float]:
    """A scrape once the workers' files count `attempts` attempts: a worker writes its counts
    once a second (metrics.FLUSH_S), so the last ones may be on their way."""

    async def counted() -> dict[str, float] | None:
        samples = await _scrape(settings, app, metrics_dir)
        return samples if _total(samples, "bullmq_jobs_total") >= attempts else None

    return await eventually(counted, 10 * FLUSH_S, f"{attempts} attempts in /metrics")


def _total(samples: dict[str, float], name: str, **labels: str) -> float:
    wanted = [f"{k}={v}" for k, v in labels.items()]
    return sum(
        value
        for key, value in samples.items()
        if key.startswith(name + "{") and all(w in key for w in wanted)
    )


async def test_counters_from_two_worker_processes_add_up_and_depths_match_health(
    settings: Settings, app: ServerApp, start_quickdapp: StartQuickdapp, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    prepare_metrics_dir(metrics_dir)
    manager = app.queue_manager
    first, second = (_start_worker(start_quickdapp, metrics_dir) for _ in range(2))
    # Submitted once both wait for work (a process that starts late on a busy machine would find
    # the queue drained), and long enough that neither can take them all.
    await _wait_for_workers(app, 2)
    await idle_on_redis(app.redis, 2)
    ok = [await manager.submit_job("sleep", {"ms": 200}) for _ in range(24)]
    bad = [await manager.submit_job("flaky", {"failures": 1}, attempts=1) for _ in range(6)]
    for job_id in ok + bad:
        await manager.wait_until_finished(job_id, 30)
    # Left in the queue for the depth gauges: two delayed jobs, and a paused queue.
    for _ in range(2):
        await manager.submit_job("echo", {}, delay=3_600_000)
    await manager.queue.pause()

    samples = await _scraped(settings, app, metrics_dir, attempts=30)
    done = _total(samples, "bullmq_jobs_total", job_type="sleep", queue="jobs", status="completed")
    failed = _total(samples, "bullmq_jobs_total", job_type="flaky", status="failed")
    assert (done, failed) == (24, 6)
    assert _total(samples, "bullmq_jobs_total") == 30
    assert _total(samples, "bullmq_job_duration_seconds_count") == 30
    # Each sleep attempt took at least its 200 ms.
    assert _total(samples, "bullmq_job_duration_seconds_sum", job_type="sleep") >= 24 * 0.2
    # Both processes did some of the work: one counter file each.
    pids = {first.pid, second.pid}
    assert {int(p.stem.split("_")[1]) for p in metrics_dir.glob("counter_*.db")} == pids
    health = await manager.get_health()
    for state, count in health.counts.items():
        assert samples[f"bullmq_queue_jobs{{queue=jobs,state={state}}}"] == count
    assert health.counts["completed"] == 24 and health.counts["failed"] == 6
    assert health.counts["delayed"] == 2
    assert samples["bullmq_queue_paused{}"] == 1
    assert samples["bullmq_queue_workers{}"] == 2
    names = [worker.name for worker in await manager.inspect.live_workers()]
    assert sorted(int(name.split(":")[1]) for name in names) == sorted(pids)


async def test_counters_survive_a_worker_restart(
    settings: Settings, app: ServerApp, start_quickdapp: StartQuickdapp, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    prepare_metrics_dir(metrics_dir)
    first = _start_worker(start_quickdapp, metrics_dir)
    await _wait_for_workers(app, 1)
    manager = app.queue_manager
    for job_id in [await manager.submit_job("echo", {}) for _ in range(5)]:
        await manager.wait_until_finished(job_id, 30)
    first.stop()
    mark_process_dead(first.pid, metrics_dir)
    prepare_metrics_dir(metrics_dir)  # as the supervisor does before starting workers again

    _start_worker(start_quickdapp, metrics_dir)
    await _wait_for_workers(app, 1)
    for job_id in [await manager.submit_job("echo", {}) for _ in range(3)]:
        await manager.wait_until_finished(job_id, 30)

    samples = await _scraped(settings, app, metrics_dir, attempts=8)
    assert _total(samples, "bullmq_jobs_total", job_type="echo", status="completed") == 8
