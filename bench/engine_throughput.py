"""The fast engine beside the stock Python bullmq Worker and Node BullMQ 6.7.0, in one run.

Starts its own redis-server (a free port in 6390-6399, no persistence, no audit anywhere) and,
round after round so that machine noise spreads over every system alike:

- drain: N no-op jobs filled while the queue is paused, then resumed; processes x concurrency
  1x50 and 2x50 (separate OS processes); jobs/s and worker CPU per job (since ready);
- latency at a steady 100 jobs/s (1x50): add -> start of the processor, p50/p99;
- sparse arrivals, a delayed job an hour out pending: add -> start for each arrival;
- delayed jobs: start minus due time, p50/p99;
- enqueue one by one and in bulk: this project's connection calling addStandardJob, Python
  bullmq's Queue.add/addBulk, Node's Queue.add/addBulk.

Every figure is the median of the rounds with its min-max and its ratio to Node BullMQ.
Node's side lives in bench/node (its own package.json; `npm install` there on first use).

    .venv/bin/python bench/engine_throughput.py [--jobs 20000] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.helpers.redis_server

from quickdapp.broker.connection import Connection  # noqa: E402
from quickdapp.broker.scripts import QueueScripts  # noqa: E402
from tests.helpers.redis_server import RedisServer, free_port  # noqa: E402

SYSTEMS = ("engine", "stock", "node")
RESULTS = ROOT / "bench" / "results" / "engine_throughput.json"


# -- worker processes -----------------------------------------------------------------------


async def python_worker(kind: str, port: int, concurrency: int, record: bool) -> None:
    """One worker process: print "ready", run until SIGTERM, then print CPU and job starts."""
    url = f"redis://127.0.0.1:{port}/0"
    starts: dict[str, float] = {}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if kind == "engine":
        from quickdapp.workers.engine import ActiveJob, Engine, Outcome

        async def process(job: ActiveJob) -> Outcome:
            if record:
                starts[job.id] = time.time() * 1000
            return Outcome()

        engine = Engine(
            redis_url=url, name=f"bench:{os.getpid()}", concurrency=concurrency, process=process
        )
        await engine.start()
    else:
        from bullmq import Worker

        async def processor(job: Any, token: str) -> None:
            if record:
                starts[job.id] = time.time() * 1000

        options = {"connection": url, "concurrency": concurrency, "autorun": False}
        worker = Worker("jobs", processor, options)
        # DESIGN.md: read the version first, or bullmq rounds its blocking waits up to seconds.
        await worker.blockingRedisConnection.getRedisVersion()
        await worker.redisConnection.getRedisVersion()
        running = asyncio.ensure_future(worker.run())
        await asyncio.sleep(0.2)
        assert not running.done()
    cpu_at_ready = os.times()
    print("ready", flush=True)
    await stop.wait()
    cpu = os.times()
    used = (cpu.user - cpu_at_ready.user) + (cpu.system - cpu_at_ready.system)
    print(json.dumps({"cpu_s": used, "starts": starts}), flush=True)
    os._exit(0)  # no graceful close: what is measured is over


class Workers:
    """Worker processes of one system, started until "ready", stopped with SIGTERM."""

    def __init__(
        self, bench: Bench, system: str, processes: int, concurrency: int, *, record: bool
    ) -> None:
        self.bench, self.system, self.record = bench, system, record
        self.processes, self.concurrency = processes, concurrency
        self.children: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Workers:
        for _ in range(self.processes):
            if self.system == "node":
                args = ["node", "worker.js", str(self.bench.port), str(self.concurrency)]
                args.append(str(int(self.record)))
                cwd = self.bench.node_dir
            else:
                args = [sys.executable, __file__, "worker", self.system]
                args += [str(self.bench.port), str(self.concurrency), str(int(self.record))]
                cwd = ROOT
            child = await asyncio.create_subprocess_exec(
                *args, cwd=cwd, stdout=subprocess.PIPE, limit=1 << 26
            )
            self.children.append(child)
        for child in self.children:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError(f"{self.system} worker did not start: {line!r}")
        await asyncio.sleep(0.3)  # idle and blocked on the marker, as in production
        return self

    async def stop(self) -> tuple[float, dict[str, float]]:
        """SIGTERM every child; their CPU seconds (summed) and job start times (ms)."""
        cpu, starts = 0.0, {}
        for child in self.children:
            child.send_signal(signal.SIGTERM)
        for child in self.children:
            assert child.stdout is not None
            report = json.loads(await asyncio.wait_for(child.stdout.readline(), 30))
            cpu += report["cpu_s"]
            starts.update(report["starts"])
            await child.wait()
        self.children = []
        return cpu, starts

    async def __aexit__(self, *exc: object) -> None:
        for child in self.children:
            if child.returncode is None:
                child.kill()
            await child.wait()


# -- the measurements -----------------------------------------------------------------------


class Bench:
    """The measurements, against one redis-server."""

    def __init__(self, port: int, node_dir: Path, jobs: int) -> None:
        self.port, self.node_dir, self.jobs = port, node_dir, jobs
        self.url = f"redis://127.0.0.1:{port}/0"
        self.scripts = QueueScripts()
        self.conn: Connection

    async def open(self) -> None:
        self.conn = Connection(self.url, command_timeout=120)
        await self.scripts.load(self.conn)

    async def fresh(self) -> None:
        await self.conn.execute("FLUSHALL")

    def add_command(self, n: int) -> tuple[Any, ...]:
        return self.scripts.add_standard_job("noop", json.dumps({"n": n}), {"attempts": 1})

    async def fill(self, n: int) -> None:
        for start in range(0, n, 1000):
            await self.conn.transaction(
                [self.add_command(i) for i in range(start, min(n, start + 1000))]
            )

    async def completed(self) -> int:
        return int(await self.conn.execute("ZCARD", "bull:jobs:completed"))

    async def wait_completed(self, n: int, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while (done := await self.completed()) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {n} completed")
            await asyncio.sleep(0.002)
        return time.perf_counter()

    async def drain(self, system: str, processes: int, concurrency: int) -> dict[str, float]:
        from bullmq import Queue

        await self.fresh()
        queue = Queue("jobs", {"connection": self.url})
        try:
            await queue.pause()
            await self.fill(self.jobs)
            async with Workers(self, system, processes, concurrency, record=False) as workers:
                started = time.perf_counter()
                await queue.resume()
                finished = await self.wait_completed(self.jobs)
                cpu, _ = await workers.stop()
        finally:
            await queue.close()
        return {
            "jobs_per_s": self.jobs / (finished - started),
            "cpu_us_per_job": cpu / self.jobs * 1e6,
        }

    async def steady_latency(self, system: str, rate: int = 100, seconds: float = 8) -> dict[str, float]:
        await self.fresh()
        added: dict[str, float] = {}
        async with Workers(self, system, 1, 50, record=True) as workers:
            begin = time.perf_counter()
            for n in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
                at = time.time() * 1000
                added[str(await self.conn.execute(*self.add_command(n)))] = at
            await self.wait_completed(len(added))
            _, starts = await workers.stop()
        latencies = sorted(starts[job_id] - at for job_id, at in added.items())
        return {"p50_ms": _pct(latencies, 50), "p99_ms": _pct(latencies, 99)}

    async def sparse(self, system: str, arrivals: int = 4, gap: float = 2.5) -> dict[str, float]:
        from bullmq import Queue

        await self.fresh()
        queue = Queue("jobs", {"connection": self.url})
        try:
            await queue.add("far-future", {}, {"delay": 3_600_000})
        finally:
            await queue.close()
        added: dict[str, float] = {}
        async with Workers(self, system, 1, 50, record=True) as workers:
            for n in range(arrivals):
                await asyncio.sleep(gap)
                at = time.time() * 1000
                added[str(await self.conn.execute(*self.add_command(n)))] = at
            await self.wait_completed(arrivals, timeout=30)
            _, starts = await workers.stop()
        latencies = [starts[job_id] - at for job_id, at in added.items()]
        return {"max_ms": max(latencies), "p50_ms": _pct(sorted(latencies), 50)}

    async def delayed(self, system: str, n: int = 16) -> dict[str, float]:
        from bullmq import Queue

        await self.fresh()
        queue = Queue("jobs", {"connection": self.url})
        due: dict[str, float] = {}
        try:
            async with Workers(self, system, 1, 50, record=True) as workers:
                for i in range(n):
                    job = await queue.add("later", {}, {"delay": 300 + 97 * i})
                    due[str(job.id)] = job.timestamp + job.delay
                await self.wait_completed(n, timeout=30)
                _, starts = await workers.stop()
        finally:
            await queue.close()
        lateness = sorted(starts[job_id] - at for job_id, at in due.items())
        return {"p50_ms": _pct(lateness, 50), "p99_ms": _pct(lateness, 99)}

    async def enqueue(self, system: str, mode: str) -> dict[str, float]:
        n = self.jobs // 4 if mode == "one" else self.jobs
        await self.fresh()
        if system == "node":
            out = subprocess.run(
                ["node", "enqueue.js", str(self.port), mode, str(n)],
                cwd=self.node_dir, capture_output=True, check=True, timeout=300,
            )  # fmt: skip
            return {"jobs_per_s": float(json.loads(out.stdout)["jobs_per_s"])}
        started = time.perf_counter()
        if system == "engine":  # this project's connection, addStandardJob directly
            if mode == "one":
                for i in range(n):
                    await self.conn.execute(*self.add_command(i))
            else:
                await self.fill(n)
        else:
            from bullmq import Queue

            queue = Queue("jobs", {"connection": self.url})
            try:
                await queue.add("warm-up", {})
                started = time.perf_counter()
                if mode == "one":
                    for i in range(n):
                        await queue.add("noop", {"n": i})
                else:
                    for s in range(0, n, 1000):
                        await queue.addBulk(
                            [{"name": "noop", "data": {"n": i}} for i in range(s, s + 1000)]
                        )
            finally:
                await queue.close()
        return {"jobs_per_s": n / (time.perf_counter() - started)}


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))
    return values[index]


# -- the run ----------------------------------------------------------------------------------


def measurements(
    bench: Bench, quick: bool
) -> list[tuple[str, str, Callable[[], Awaitable[dict[str, float]]]]]:
    plan: list[tuple[str, str, Callable[[], Awaitable[dict[str, float]]]]] = []
    for system in SYSTEMS:
        for procs in (1, 2):
            plan.append((f"drain {procs}x50", system, lambda s=system, p=procs: bench.drain(s, p, 50)))
    for system in SYSTEMS:
        plan.append(("latency 100/s", system, lambda s=system: bench.steady_latency(s)))
        plan.append(("delayed lateness", system, lambda s=system: bench.delayed(s)))
        if not quick:
            plan.append(("sparse arrivals", system, lambda s=system: bench.sparse(s)))
    for system in SYSTEMS:
        for mode in ("one", "bulk"):
            plan.append((f"enqueue {mode}", system, lambda s=system, m=mode: bench.enqueue(s, m)))
    return plan


def summarise(samples: dict[tuple[str, str], list[dict[str, float]]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for (workload, system), runs in samples.items():
        row = table.setdefault(workload, {})
        row[system] = {
            metric: {
                "median": statistics.median(r[metric] for r in runs),
                "min": min(r[metric] for r in runs),
                "max": max(r[metric] for r in runs),
            }
            for metric in runs[0]
        }
    return table


def markdown(table: dict[str, Any]) -> str:
    lines = ["| workload | metric | system | median | min-max | x Node |", "|---|---|---|---|---|---|"]
    for workload, row in table.items():
        for system, metrics in row.items():
            for metric, stats in metrics.items():
                node = row.get("node", {}).get(metric, {}).get("median")
                ratio = f"{stats['median'] / node:.2f}" if node else "-"
                lines.append(
                    f"| {workload} | {metric} | {system} | {stats['median']:.2f} | "
                    f"{stats['min']:.2f}-{stats['max']:.2f} | {ratio} |"
                )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> None:
    node_dir = Path(args.node_dir)
    if not await asyncio.to_thread((node_dir / "node_modules" / "bullmq").is_dir):
        subprocess.run(
            ["npm", "install", "--no-package-lock", "--no-audit", "--no-fund"], cwd=node_dir, check=True
        )
    with tempfile.TemporaryDirectory() as data_dir:
        server = RedisServer(free_port(), Path(data_dir))
        server.start()
        try:
            bench = Bench(server.port, node_dir, args.jobs)
            await bench.open()
            samples: dict[tuple[str, str], list[dict[str, float]]] = {}
            plan = measurements(bench, args.quick)
            for round_no in range(1, args.runs + 1):
                for workload, system, measure in plan:
                    result = await measure()
                    samples.setdefault((workload, system), []).append(result)
                    print(f"round {round_no} {workload:18s} {system:7s} {result}", flush=True)
            await bench.conn.close()
        finally:
            server.stop()
    table = summarise(samples)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"jobs": args.jobs, "runs": args.runs, "results": table}, indent=1))
    print(markdown(table))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        kind, port, concurrency, record = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        asyncio.run(python_worker(kind, port, concurrency, record == "1"))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per drain / bulk enqueue")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip the slow sparse-arrival runs")
    parser.add_argument("--node-dir", default=str(ROOT / "bench" / "node"))
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
