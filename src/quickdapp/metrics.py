"""Prometheus metrics of job attempts, recorded by a hook in every worker process.

Workers record into prometheus_client's multiprocess files in METRICS_DIR; the web server
merges those files on each scrape (web/scrape.py). The files of a worker that exits stay, so
counters survive worker restarts.
"""

from __future__ import annotations

import asyncio
import bisect
import glob
import logging
import math
import os
from pathlib import Path

from prometheus_client import Counter, Histogram, values
from prometheus_client import multiprocess as prom_multiprocess

from quickdapp.attempts import AttemptHook, JobExecution
from quickdapp.keys import QUEUE_NAME

logger = logging.getLogger(__name__)

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


FLUSH_S = 1.0
"""How long a process holds its counts before writing them to its metrics file: a write per
(type, status) and second, instead of three mmap writes (each with a lock and a getpid) per
attempt. A worker flushes when it closes; one that is killed loses at most this much."""


class _Tally:
    """Attempts of one (type, status) not yet written: count, seconds, and per-bucket counts."""

    __slots__ = ("buckets", "count", "seconds")

    def __init__(self, buckets: int) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * buckets


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
        self._bounds = (*DURATION_BUCKETS, math.inf)  # the histogram's, +Inf included
        self._tallies: dict[tuple[str, str], _Tally] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._flush_loop: asyncio.AbstractEventLoop | None = None  # the loop of that timer

    def record(self, job_type: str, status: str, seconds: float) -> None:
        tally = self._tallies.get((job_type, status))
        if tally is None:
            tally = self._tallies[job_type, status] = _Tally(len(self._bounds))
        tally.count += 1
        tally.seconds += seconds
        # The first bucket whose bound is >= seconds, as Histogram.observe picks it.
        tally.buckets[bisect.bisect_left(self._bounds, seconds)] += 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: nothing would flush later
            self.flush()
            return
        # No timer yet, or one on an event loop that has since ended and will never fire.
        if self._flush_loop is not loop:
            self._flush_loop = loop
            self._flush = loop.call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
        self._flush = self._flush_loop = None
        for (job_type, status), tally in self._tallies.items():
            self.jobs.labels(job_type, QUEUE_NAME, status).inc(tally.count)
            histogram = self.duration.labels(job_type, QUEUE_NAME, status)
            # Histogram has no public way to add many observations at once; its sum and
            # per-bucket values (prometheus_client 0.26, tested in tests/test_metrics.py) do.
            histogram._sum.inc(tally.seconds)
            for value, count in zip(histogram._buckets, tally.buckets, strict=True):
                if count:
                    value.inc(count)
        self._tallies.clear()


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
    """Count one finished attempt and its duration: held for up to FLUSH_S, then written (to
    this process's registry, or its multiprocess file)."""
    global _metrics
    if _metrics is None:
        _metrics = _JobMetrics()
    _metrics.record(job_type, status, seconds)


def flush_job_metrics() -> None:
    """Write the counts held since the last flush now (a worker calls this as it closes)."""
    if _metrics is not None:
        _metrics.flush()


class MetricsHook(AttemptHook):
    """Counts every finished attempt, stalled ones too, as the audit trail records them."""

    async def after(self, execution: JobExecution, recorded: bool) -> None:
        # Not recorded: the stalled check counts that attempt instead, as the audit does.
        if recorded:
            record_job(execution.type, execution.status, execution.duration_ms / 1000)

    async def stalled(self, execution: JobExecution) -> None:
        record_job(execution.type, execution.status, execution.duration_ms / 1000)
