"""The metrics a worker holds and writes once a second: the same figures as one observe() each."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import Histogram

from quickdapp import metrics
from quickdapp.keys import QUEUE_NAME

# Below the first bucket, on bucket edges, between them, and past the last one.
DURATIONS = [0.0, 0.001, 0.005, 0.0051, 0.3, 1.0, 7.0, 120.0, 300.0, 301.0, 10_000.0]


def _samples(metric: object) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return sorted(
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in metric.collect()  # type: ignore[attr-defined]
        for s in family.samples
        if not s.name.endswith("_created")
    )


def test_a_flush_writes_what_observe_would_have() -> None:
    held = metrics._JobMetrics()

    async def record() -> None:
        for seconds in DURATIONS:
            held.record("echo", "completed", seconds)
        held.record("echo", "failed", 0.02)
        assert _samples(held.jobs) == []  # held until the flush
        held.flush()

    asyncio.run(record())

    reference = Histogram(
        "bullmq_job_duration_seconds",
        "Time from the start of an attempt to its outcome",
        ["job_type", "queue", "status"],
        buckets=metrics.DURATION_BUCKETS,
        registry=None,
    )
    for seconds in DURATIONS:
        reference.labels("echo", QUEUE_NAME, "completed").observe(seconds)
    reference.labels("echo", QUEUE_NAME, "failed").observe(0.02)
    assert _samples(held.duration) == _samples(reference)
    counts = {dict(s[1])["status"]: s[2] for s in _samples(held.jobs) if s[0] == "bullmq_jobs_total"}
    assert counts == {"completed": len(DURATIONS), "failed": 1}
    held.flush()  # nothing held: writes nothing more
    assert _samples(held.duration) == _samples(reference)


def test_counts_are_written_within_the_flush_period_on_each_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "FLUSH_S", 0.05)
    held = metrics._JobMetrics()

    def written() -> float:
        return sum(s[2] for s in _samples(held.jobs) if s[0] == "bullmq_jobs_total")

    async def record_then_wait(n: int) -> tuple[float, float]:
        for _ in range(n):
            held.record("echo", "completed", 0.001)
        before = written()
        await asyncio.sleep(0.2)
        return before, written()

    assert asyncio.run(record_then_wait(3)) == (0, 3)
    # A timer left on an ended loop never fires: a record on a new loop sets its own.
    held.record("echo", "completed", 0.001)
    assert written() == 4  # no loop running: written at once
    assert asyncio.run(record_then_wait(2)) == (4, 6)
