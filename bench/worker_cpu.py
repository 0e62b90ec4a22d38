"""The CPU one worker process spends per job: where the drains of `make bench` go (issue 10).

`PYTHONPATH=. .venv/bin/python bench/worker_cpu.py [--jobs N] [--concurrency C] [--runs R]
[--audit] [--profile] [--loop L]` fills a private Redis with N no-op jobs (held by a paused
queue), runs one worker (the engine with the standard hooks less the audit trail, as `make
bench`'s "no audit"; with `--audit`, the audit hook too: its entries go to the stream, and no
writer moves them, so only the worker's share of the audit is measured) in this process,
resumes the queue and times the drain: jobs per second and this process's CPU per job (user and
system), medians of R runs. The worker runs on uvloop, as the worker processes do; `--loop
asyncio,uvloop` alternates the runs between the two loops and gives each loop's medians.
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
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

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
Drained = tuple[float, float, float]  # jobs/s, user and system CPU µs per job


async def _pending(app: ServerApp) -> int:
    """Jobs waiting, due by priority or running (three cheap reads: this process is measured)."""
    async with app.redis.pipeline(transaction=False) as pipe:
        pipe.llen(queue_key("wait"))
        pipe.zcard(queue_key("prioritized"))
        pipe.llen(queue_key("active"))
        return sum(int(n) for n in await pipe.execute())


async def _drain(
    settings: Settings, jobs: int, audit: bool, profiler: cProfile.Profile | None
) -> Drained:
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


LOOPS: dict[str, Callable[[Coroutine[Any, Any, Drained]], Drained]] = {
    "uvloop": uvloop.run,  # as the worker processes run
    "asyncio": asyncio.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--audit", action="store_true", help="the audit hook on (no writer)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--loop", default="uvloop", help="event loops, e.g. asyncio,uvloop: runs alternate between them"
    )
    args = parser.parse_args()
    loops = args.loop.split(",")
    if unknown := set(loops) - set(LOOPS):
        parser.error(f"unknown loops: {', '.join(sorted(unknown))} (of {', '.join(LOOPS)})")
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
            LOOPS[loops[0]](_drain(settings, args.jobs, args.audit, profiler))
            pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
            return
        results: dict[str, list[Drained]] = {loop: [] for loop in loops}
        for _ in range(args.runs):
            for loop in loops:
                results[loop].append(LOOPS[loop](_drain(settings, args.jobs, args.audit, None)))
                rate, user, system = results[loop][-1]
                print(
                    f"{loop}: {rate:,.0f} jobs/s, worker CPU {user + system:.0f} us/job "
                    f"(user {user:.0f}, system {system:.0f})"
                )
    for loop, drained in results.items():
        rates = [rate for rate, _, _ in drained]
        cpu = statistics.median(user + system for _, user, system in drained)
        print(
            f"{loop}: median of {args.runs} x {args.jobs:,} jobs at 1x{args.concurrency}: "
            f"{statistics.median(rates):,.0f} jobs/s, worker CPU {cpu:.0f} us/job"
        )


if __name__ == "__main__":
    main()
