"""The /metrics scrape: every worker's job metrics, merged from their files, and queue depths now."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from quickdapp.keys import QUEUE_NAME, JobState
from quickdapp.queue.manager import QueueManager

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class QueueDepthCollector(Collector):
    """Jobs per state, as read from Redis just before this scrape."""

    def __init__(self, counts: dict[JobState, int], paused: bool, workers: int) -> None:
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
