"""The CPU one worker process spends per job: where the drains of `make bench` go (issue 10).

`PYTHONPATH=. .venv/bin/python bench/worker_cpu.py [--jobs N] [--concurrency C] [--runs R]
[--audit] [--profile]` fills a private Redis with N no-op jobs (held by a paused queue), runs one
worker (the engine with the standard hooks less the audit trail, as `make bench`'s "no audit";
with `--audit`, the audit hook too: its entries go to the stream, and no writer moves them, so
only the worker's share of the audit is measured) in this process, resumes the queue and times
the drain: jobs per second and this process's CPU per job (user and system), medians of R runs.
`--profile` prints cProfile's 40 most expensive functions of one more run instead (its figures
are inflated by the profiler).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import resource
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import uvloop

from bench.redis_server import redis_server
from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.jobs.registry import default_registry
from quickdapp.keys import queue_key
from quickdapp.queue.manager import JobRequest
from quickdapp.workers.hooks import standard_hooks
from quickdapp.workers.process import run_worker

JOB_MODULE = "bench.jobs"  # its `echo` job: a no-op


async def _pending(app: ServerApp) -> int:
    """Jobs waiting, due by priority or running (three cheap reads: this process is measured)."""
    async with app.redis.pipeline(transaction=False) as pipe:
        pipe.llen(queue_key("wait"))
        pipe.zcard(queue_key("prioritized"))
        pipe.llen(queue_key("active"))
        return sum(int(n) for n in await pipe.execute())


async def _drain(
    settings: Settings, jobs: int, audit: bool, profiler: cProfile.Profile | None
) -> tuple[float, float, float]:
    app = await ServerApp.create(settings, default_registry([JOB_MODULE]))
    try:
        await app.redis.flushdb()  # a private Redis: each run starts empty
        await app.queue_manager.pause()
        for first in range(0, jobs, 1_000):
            await app.queue_manager.submit_jobs([JobRequest("echo", {})] * min(1_000, jobs - first))
        stop, ready = asyncio.Event(), asyncio.Event()
        hooks = partial(standard_hooks, audit=audit)
        worker = asyncio.create_task(run_worker(app, stop, ready=ready, audit_writer=False, hooks=hooks))
        await ready.wait()
        before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        await app.queue_manager.resume()
        while await _pending(app):
            await asyncio.sleep(0.01)
        if profiler is not None:
            profiler.disable()
        wall, after = time.perf_counter() - wall, resource.getrusage(resource.RUSAGE_SELF)
        stop.set()
        await worker
        user = (after.ru_utime - before.ru_utime) / jobs * 1e6
        system = (after.ru_stime - before.ru_stime) / jobs * 1e6
        return jobs / wall, user, system
    finally:
        await app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--audit", action="store_true", help="the audit hook on (no writer)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, redis_server(Path(work)) as redis_url:
        settings = Settings(
            redis_url=redis_url,
            database_url=f"sqlite+aiosqlite:///{work}/unused.db",
            worker_queue_concurrency=args.concurrency,
            job_modules=JOB_MODULE,
            metrics_dir=f"{work}/metrics",
            log_level="WARNING",
        )
        if args.profile:
            profiler = cProfile.Profile()
            uvloop.run(_drain(settings, args.jobs, args.audit, profiler))
            pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
            return
        results = [uvloop.run(_drain(settings, args.jobs, args.audit, None)) for _ in range(args.runs)]
    for rate, user, system in results:
        cpu = user + system
        print(f"{rate:,.0f} jobs/s, worker CPU {cpu:.0f} us/job (user {user:.0f}, system {system:.0f})")
    rates, users, systems = zip(*results, strict=True)
    cpu = statistics.median(u + s for u, s in zip(users, systems, strict=True))
    print(
        f"median of {args.runs} x {args.jobs:,} jobs at 1x{args.concurrency}: "
        f"{statistics.median(rates):,.0f} jobs/s, worker CPU {cpu:.0f} us/job"
    )


if __name__ == "__main__":
    main()
