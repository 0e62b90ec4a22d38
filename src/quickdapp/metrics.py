"""Prometheus metrics: job counters and durations from every worker process, queue depths at scrape.

Workers record into prometheus_client's multiprocess files in METRICS_DIR; the web server
merges those files and reads the queue's counts from Redis on each scrape. The files of a
worker that exits stay, so counters survive worker restarts.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from quickdapp.queue.job_options import QUEUE_NAME

if TYPE_CHECKING:
    from quickdapp.queue.manager import QueueManager

logger = logging.getLogger(__name__)

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _JobMetrics:
    def __init__(self) -> None:
        # registry=None: the web server collects through the multiprocess files instead.
        self.jobs = Counter(
            "bullmq_jobs",
            "Job attempts finished, by job type, queue and outcome",
            ["job_type", "queue", "status"],
            registry=None,
        )
        self.duration = Histogram(
            "bullmq_job_duration_seconds",
            "Time from the start of an attempt to its outcome",
            ["job_type", "queue", "status"],
            buckets=DURATION_BUCKETS,
            registry=None,
        )


_metrics: _JobMetrics | None = None


def prepare_metrics_dir(path: str | Path) -> Path:
    """Create the multiprocess directory before workers start.

    Counter and histogram files of earlier processes are kept, so totals survive restarts
    (a process reusing a pid continues from its file); only live-gauge files, which describe
    processes that no longer run, are removed.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in glob.glob(str(directory / "gauge_live*.db")):
        os.remove(stale)
    return directory


def mark_process_dead(pid: int, path: str | Path) -> None:
    """Tell the multiprocess files that worker `pid` has exited (the supervisor calls this)."""
    prom_multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


def enable_multiprocess(path: str | Path) -> None:
    """Make this process record into the files in `path`; call before the first job runs.

    prometheus_client names each file from PROMETHEUS_MULTIPROC_DIR at write time, so the
    setting is handed on through that variable.
    """
    if _metrics is not None:
        raise RuntimeError("enable_multiprocess() must run before the first job is recorded")
    directory = prepare_metrics_dir(path).resolve()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    logger.info("recording job metrics in %s", directory)


def record_job(job_type: str, status: str, seconds: float) -> None:
    """Count one finished attempt and its duration (in this process, or its multiprocess file)."""
    global _metrics
    if _metrics is None:
        _metrics = _JobMetrics()
    _metrics.jobs.labels(job_type, QUEUE_NAME, status).inc()
    _metrics.duration.labels(job_type, QUEUE_NAME, status).observe(seconds)


class QueueDepthCollector(Collector):
    """Jobs per state, as read from Redis just before this scrape."""

    def __init__(self, counts: dict[str, int], paused: bool, workers: int) -> None:
        self._counts = counts
        self._paused = paused
        self._workers = workers

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "bullmq_queue_jobs", "Jobs in the queue by state", labels=["queue", "state"]
        )
        for state, count in self._counts.items():
            depth.add_metric([QUEUE_NAME, state], count)
        yield depth
        yield GaugeMetricFamily(
            "bullmq_queue_paused", "1 when the queue is paused", value=int(self._paused)
        )
        yield GaugeMetricFamily(
            "bullmq_queue_workers",
            "Workers connected to the queue (not connections)",
            value=self._workers,
        )


async def render_metrics(queue_manager: QueueManager, metrics_dir: str | Path) -> bytes:
    """The Prometheus text of every worker's job metrics and the queue's depths right now."""
    health = await queue_manager.get_health()
    workers = health.workers
    depth = QueueDepthCollector(health.counts, health.paused, workers)
    # Reading the workers' files is file I/O: keep it off the event loop.
    return await asyncio.to_thread(_render, depth, Path(metrics_dir))


def _render(depth: QueueDepthCollector, metrics_dir: Path) -> bytes:
    registry = CollectorRegistry()
    registry.register(depth)
    if metrics_dir.is_dir():
        prom_multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
    return generate_latest(registry)
