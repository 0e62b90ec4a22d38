"""The workloads, each measured on one system's running workers (or none, for enqueue).

A session is one start of a system's workers at one shape (processes x concurrency); the
workloads of that shape run in it one after another, each waiting until its jobs are done
(and, with an audit trail, recorded). Every function returns metric -> value.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench.peers.base import SLEEP_MS, Kind, Peer, now_ms
from bench.workers import Workers

Result = dict[str, float]
POLL = 0.002  # seconds between looks for the end of a workload
AUDIT_POLL = 0.005  # seconds between counts of the audit rows (the lag's resolution)
FAR_FUTURE_MS = 3_600_000
COMMANDS_SHOWN = 16  # commands per line of --commands


@dataclass(frozen=True)
class Sizes:
    drain: int = 10_000  # no-op jobs drained at 1x50 and 2x50
    drain_slow: int = 5_000  # the same by the slower peers (Peer.slow)
    drain_1x1: int = 1_000
    sleep: int = 2_000  # 50 ms jobs at 2x50
    steady: int = 300  # jobs at 100 jobs/s
    sparse_gaps: tuple[float, ...] = (0.3, 1.0, 5.5)  # seconds before each arrival
    delayed: int = 30  # jobs due 200 ms .. 1.4 s after they are added
    enqueue_one: int = 2_000
    enqueue_bulk: int = 10_000
    timeout: float = 120.0  # seconds a workload may take before the run is called failed


class Session:
    """One system's workers at one shape, and the jobs given to them since its start."""

    def __init__(self, peer: Peer, workers: Workers, sizes: Sizes, *, commands: bool = False) -> None:
        self.peer, self.workers, self.sizes = peer, workers, sizes
        self.commands = commands  # print Redis's time per command and job after each drain
        self.expected = 0  # jobs that must be done (and recorded) by the end of a workload

    async def wait_done(self, n: int) -> float:
        """Waits until the `n` jobs just given are done; returns perf_counter() then."""
        self.expected += n
        async with asyncio.timeout(self.sizes.timeout):
            while not await self.peer.finished(self.expected):
                await asyncio.sleep(POLL)
        return time.perf_counter()

    async def idle_rss(self) -> Result:
        await asyncio.sleep(0.5)  # settled, waiting for jobs
        return {"idle_rss_mb": max(self.workers.rss_mb())}

    async def drain(self, kind: Kind, n: int) -> tuple[float, float, float | None, float | None]:
        """`n` held jobs released at once: (seconds until done, CPU seconds, seconds until
        BullMQ had finished them, before their audit rows landed: None without audit, Redis's
        CPU seconds: None without Redis)."""
        await self.peer.fill_held(kind, n)
        cpu, redis_cpu = self.workers.cpu_s(), await self.peer.redis_cpu_s()
        audited = await self.peer.recorded() is not None
        if self.commands:
            await self.peer.redis_command_times(reset=True)
        began = time.perf_counter()
        await self.peer.release()
        queue_done = None
        self.expected += n
        async with asyncio.timeout(self.sizes.timeout):
            # One look per poll, as for a system without audit: first at the queue alone
            # (finished(0): no rows asked for), then at the queue and the rows.
            while audited and queue_done is None:
                if await self.peer.finished(0):
                    queue_done = time.perf_counter() - began
                else:
                    await asyncio.sleep(POLL)
            while not await self.peer.finished(self.expected):
                await asyncio.sleep(POLL)
        seconds = time.perf_counter() - began
        cpu, redis_after = self.workers.cpu_s() - cpu, await self.peer.redis_cpu_s()
        redis_used = None if redis_cpu is None or redis_after is None else redis_after - redis_cpu
        times = await self.peer.redis_command_times(reset=False) if self.commands else None
        if times:
            print(_command_line(self.peer.name, kind, n, times), flush=True)
        return seconds, cpu, queue_done, redis_used

    def drain_size(self) -> int:
        """Jobs of a 1x50 or 2x50 drain for this peer."""
        return self.sizes.drain_slow if self.peer.slow else self.sizes.drain

    async def drain_noop(self, n: int) -> Result:
        seconds, cpu, queue_done, redis_cpu = await self.drain("echo", n)
        result = {"jobs_per_s": n / seconds, "cpu_us_per_job": cpu / n * 1e6}
        if redis_cpu is not None:
            result["redis_cpu_us_per_job"] = redis_cpu / n * 1e6
        if queue_done is not None:
            result["jobs_per_s_before_rows"] = n / (queue_done or seconds)
        return result

    async def drain_sleep(self, processes: int, concurrency: int) -> Result:
        n = self.sizes.sleep
        seconds, *_ = await self.drain("sleep", n)
        bound = n * SLEEP_MS / 1000 / (processes * concurrency)
        return {"wall_s": seconds, "x_bound": seconds / bound}

    async def steady(self, rate: float = 100.0) -> Result:
        """Jobs added at `rate` per second: add -> start p50/p99, and the audit lag."""
        n = self.sizes.steady
        rows: list[tuple[float, int]] = []
        counting = asyncio.create_task(self._count_rows(rows))
        added: dict[str, float] = {}
        begin = time.perf_counter()
        try:
            for i in range(n):
                await asyncio.sleep(max(0.0, begin + i / rate - time.perf_counter()))
                at = now_ms()
                added[await self.peer.add("stamp")] = at
            await self.wait_done(n)
        finally:
            counting.cancel()
        final = await self.peer.recorded()
        if final is not None:
            rows.append((now_ms(), final))
        starts = self._starts_of(added)
        result = _percentiles([starts[key] - at for key, at in added.items()])
        if rows:
            result.update(_audit_lag(sorted(starts[key] for key in added), rows, self.expected - n))
        return result

    async def _count_rows(self, rows: list[tuple[float, int]]) -> None:
        while True:
            count = await self.peer.recorded()
            if count is None:
                return
            rows.append((now_ms(), count))
            await asyncio.sleep(AUDIT_POLL)

    async def sparse(self) -> Result:
        """Jobs arriving seconds apart while a delayed job an hour out is pending."""
        await self.peer.add("echo", FAR_FUTURE_MS)
        added: dict[str, float] = {}
        for gap in self.sizes.sparse_gaps:
            await asyncio.sleep(gap)
            at = now_ms()
            added[await self.peer.add("stamp")] = at
        await self.wait_done(len(added))
        starts = self._starts_of(added)
        latencies = [starts[key] - at for key, at in added.items()]
        return {"max_ms": max(latencies), "p50_ms": _percentiles(latencies)["p50_ms"]}

    async def delayed(self) -> Result:
        """Delayed jobs: how late each starts after it is due."""
        due: dict[str, float] = {}
        for i in range(self.sizes.delayed):
            delay = 200 + 40 * i
            at = now_ms()
            due[await self.peer.add("stamp", delay)] = at + delay
        await asyncio.sleep((200 + 40 * self.sizes.delayed) / 1000)
        await self.wait_done(len(due))
        starts = self._starts_of(due)
        return _percentiles([starts[key] - at for key, at in due.items()])

    def _starts_of(self, keys: dict[str, float]) -> dict[str, float]:
        starts = self.workers.starts()
        missing = [key for key in keys if key not in starts]
        if missing:
            raise RuntimeError(f"{self.peer.name}: {len(missing)} jobs done without a start noted")
        return starts


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _percentiles(values: list[float]) -> Result:
    return {"p50_ms": _percentile(values, 50), "p99_ms": _percentile(values, 99)}


def _audit_lag(starts: list[float], rows: list[tuple[float, int]], before: int) -> Result:
    """How long after its job started each row was counted in worker_jobs (p50/p99, ms): the
    k-th row to land is matched with the k-th job to start."""
    lags = []
    for k, started in enumerate(starts, start=1):
        landed = next((at for at, count in rows if count - before >= k), None)
        if landed is not None:
            lags.append(landed - started)
    if len(lags) < len(starts):
        raise RuntimeError(f"audit rows counted for {len(lags)} of {len(starts)} jobs")
    result = _percentiles(lags)
    return {"audit_lag_p50_ms": result["p50_ms"], "audit_lag_p99_ms": result["p99_ms"]}


def _command_line(system: str, kind: Kind, n: int, times: dict[str, tuple[int, int]]) -> str:
    """One drain's Redis time per job by command, the costliest first: µs (calls per job)."""
    costly = sorted(times.items(), key=lambda item: -item[1][1])[:COMMANDS_SHOWN]
    shown = ", ".join(f"{name} {usec / n:.1f} ({calls / n:.2f})" for name, (calls, usec) in costly)
    return f"    Redis µs/job by command, {system}, {n:,} {kind}: {shown}"
