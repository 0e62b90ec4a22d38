"""Duration bins and percentiles: exact where stated, within RELATIVE_ERROR where estimated."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.histogram import (
    BINS_PER_DOUBLING,
    RELATIVE_ERROR,
    bin_estimate,
    duration_bin,
    percentile,
    percentile_of_counts,
    sql_duration_bin,
)
from quickdapp.audit.job_metrics import EXACT_MAX_ROWS, get_job_metrics
from quickdapp.audit.store import record_job_executions
from quickdapp.db.schema import WorkerJob
from tests.audit.attempts import attempt

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_bins_are_eight_per_doubling_exactly_at_their_edges() -> None:
    assert RELATIVE_ERROR == pytest.approx(0.0443, abs=1e-4)
    assert [duration_bin(ms) for ms in (-5, 0, 1, 2, 4, 1024)] == [0, 0, 1, 9, 17, 81]
    for ms in range(1, 300_000):
        b = duration_bin(ms)
        # b = 1 + floor(8 log2 ms), decided in integers: 2^(b-1) <= ms^8 < 2^b.
        assert 2 ** (b - 1) <= ms**BINS_PER_DOUBLING < 2**b, ms


async def test_postgresql_bins_a_duration_as_python_does_at_every_edge(app: ServerApp) -> None:
    # Each bin's first millisecond and the one before it, for every bin an INTEGER can reach.
    firsts = _bin_firsts()
    durations = sorted({-7, 0, *firsts, *(ms - 1 for ms in firsts), 2**31 - 1})
    async with app.sessions() as session:
        binned = await session.execute(
            text(f"SELECT d, {sql_duration_bin('d')} FROM unnest(CAST(:d AS integer[])) AS d"),
            {"d": durations},
        )
        assert dict(binned.all()) == {ms: duration_bin(ms) for ms in durations}


def _bin_firsts() -> list[int]:
    """The first millisecond of each bin up to 2^31 (bisected from duration_bin)."""
    firsts, ms = [], 1
    while ms < 2**31:
        firsts.append(ms)
        low, high = ms, 2**31  # the first ms of the next bin is in (low, high]
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if duration_bin(middle) == duration_bin(ms) else (low, middle)
        ms = high
    return firsts


def test_a_bin_stands_for_its_values_within_the_stated_error() -> None:
    for ms in range(1, 300_000):
        estimate = bin_estimate(duration_bin(ms))
        assert abs(estimate - ms) <= RELATIVE_ERROR * ms + 1e-9, ms
    assert bin_estimate(duration_bin(3)) == 3  # a bin holding one whole ms is exact


def test_percentiles_over_counts_are_percentile_cont() -> None:
    values = [(i + 1) * 10 for i in range(10)]
    assert percentile(values, 0.5) == 55.0
    assert percentile(values, 0.95) == pytest.approx(95.5)
    assert percentile([7], 0.95) == 7
    assert percentile_of_counts({1.0: 3, 10.0: 1}, 0.5) == 1.0
    assert percentile_of_counts({}, 0.5) == 0.0


async def _exact_percentiles(
    app: ServerApp, since: datetime, until: datetime
) -> dict[str, tuple[float, float]]:
    durations = WorkerJob.duration_ms
    async with app.sessions() as session:
        rows = await session.execute(
            select(
                WorkerJob.type,
                func.percentile_cont(0.5).within_group(durations),
                func.percentile_cont(0.95).within_group(durations),
            )
            .where(WorkerJob.created_at >= since, WorkerJob.created_at < until)
            .group_by(WorkerJob.type)
        )
        return {job_type: (float(p50), float(p95)) for job_type, p50, p95 in rows}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_histogram_percentiles_are_within_the_stated_error_of_percentile_cont(
    app: ServerApp, seed: int
) -> None:
    rng = random.Random(seed)
    shapes = {"narrow": (math.log(40), 0.3), "wide": (math.log(300), 1.5), "tiny": (math.log(3), 0.8)}
    made = [
        attempt(
            f"{job_type}-{i}",
            T0 + timedelta(seconds=rng.uniform(0, 10 * 3600)),
            type=job_type,
            duration_ms=max(0, round(rng.lognormvariate(mu, sigma))),
        )
        for job_type, (mu, sigma) in shapes.items()
        for i in range(EXACT_MAX_ROWS // 2)  # 30,000 rows in all: past the exact path's limit
    ]
    await record_job_executions(app.sessions, made)
    # A window with parts of an hour at both ends, read from worker_jobs.
    since, until = T0 + timedelta(minutes=17), T0 + timedelta(hours=9, minutes=41)

    estimated = {m.type: m for m in await get_job_metrics(app.sessions, since=since, until=until)}
    exact = await _exact_percentiles(app, since, until)

    for job_type, (p50, p95) in exact.items():
        figures = estimated[job_type]
        assert not figures.exact_percentiles
        assert abs(figures.p50_ms - p50) <= RELATIVE_ERROR * p50 + 1e-9, (job_type, figures.p50_ms, p50)
        assert abs(figures.p95_ms - p95) <= RELATIVE_ERROR * p95 + 1e-9, (job_type, figures.p95_ms, p95)


async def test_small_windows_have_exact_percentiles(app: ServerApp) -> None:
    made = [
        attempt(f"j{i}", T0 + timedelta(minutes=i), type="t", duration_ms=(i * 37) % 1000 + 1)
        for i in range(600)
    ]
    await record_job_executions(app.sessions, made)
    for since, until in [
        (T0, T0 + timedelta(minutes=50)),
        (T0 - timedelta(days=3), T0 + timedelta(days=3)),
    ]:
        [figures] = await get_job_metrics(app.sessions, since=since, until=until)
        exact = await _exact_percentiles(app, since, until)
        assert figures.exact_percentiles
        assert (figures.p50_ms, figures.p95_ms) == pytest.approx(exact["t"])


async def test_sqlite_gives_the_figures_postgresql_gives(
    app: ServerApp, sqlite_sessions: async_sessionmaker[AsyncSession]
) -> None:
    rng = random.Random(9)
    made = [
        attempt(
            f"j{i}",
            T0 + timedelta(seconds=rng.uniform(0, 30 * 3600)),
            type=rng.choice("ab"),
            status=rng.choice(["completed", "failed"]),
            duration_ms=round(rng.lognormvariate(4, 1)),
        )
        for i in range(EXACT_MAX_ROWS + 500)
    ]
    await record_job_executions(app.sessions, made)
    await record_job_executions(sqlite_sessions, made)
    for since, until in [
        (T0 + timedelta(minutes=7), T0 + timedelta(hours=29)),
        (T0, T0 + timedelta(minutes=30)),
    ]:
        here = await get_job_metrics(sqlite_sessions, since=since, until=until)
        there = await get_job_metrics(app.sessions, since=since, until=until)
        assert here == there
