"""Prometheus metrics of job attempts, recorded by a hook in every worker process.

Workers record into prometheus_client's multiprocess files in METRICS_DIR; the web server
merges those files on each scrape (web/scrape.py). The files of a worker that exits stay, so
counters survive worker restarts.
"""

from __future__ import annotations

import glob
import logging
import os
from pathlib import Path

from prometheus_client import Counter, Histogram, values
from prometheus_client import multiprocess as prom_multiprocess

from quickdapp.attempts import AttemptHook, JobExecution
from quickdapp.keys import QUEUE_NAME

logger = logging.getLogger(__name__)

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


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
        # The children of each (type, status): `labels()` takes a lock and builds a key each call.
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def record(self, job_type: str, status: str, seconds: float) -> None:
        children = self._children.get((job_type, status))
        if children is None:
            children = (
                self.jobs.labels(job_type, QUEUE_NAME, status),
                self.duration.labels(job_type, QUEUE_NAME, status),
            )
            self._children[job_type, status] = children
        children[0].inc()
        children[1].observe(seconds)


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
    _metrics.record(job_type, status, seconds)


class MetricsHook(AttemptHook):
    """Counts every finished attempt, stalled ones too, as the audit trail records them."""

    async def after(self, execution: JobExecution, recorded: bool) -> None:
        # Not recorded: the stalled check counts that attempt instead, as the audit does.
        if recorded:
            record_job(execution.type, execution.status, execution.duration_ms / 1000)

    async def stalled(self, execution: JobExecution) -> None:
        record_job(execution.type, execution.status, execution.duration_ms / 1000)
