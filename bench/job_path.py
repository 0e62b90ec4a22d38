"""The Python CPU of one job's way through a worker, without I/O: steady figures on a noisy machine.

`PYTHONPATH=. .venv/bin/python bench/job_path.py [--audit] [--jobs N] [--profile]` takes one
real job hash from a private Redis, then, N times over: parses it as the moveToFinished reply
that hands it out, runs it through the processor with the standard hooks (the `echo` no-op), builds
the finishing call (with the audit entry, with `--audit`) and RESP-encodes it, and calls
`on_finished`. Prints the fastest of 7 passes in µs per job: no socket, no event-loop wait,
so the figure moves only when the code does (bench/worker_cpu.py measures the whole worker,
I/O included, but varies by tens of percent from run to run here). `--profile` prints
cProfile's 40 most expensive functions of one pass instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import uvloop

from bench.redis_server import redis_server
from quickdapp.app.server_app import ServerApp
from quickdapp.broker.connection import _pack
from quickdapp.broker.job import parse_next
from quickdapp.config import Settings
from quickdapp.jobs.registry import default_registry
from quickdapp.keys import queue_key
from quickdapp.metrics import enable_multiprocess
from quickdapp.workers.engine import Engine
from quickdapp.workers.hooks import standard_hooks
from quickdapp.workers.processor import JobProcessor

PASSES = 7


async def _measure(settings: Settings, jobs: int, audit: bool, profile: bool) -> None:
    app = await ServerApp.create(settings, default_registry(["bench.jobs"]))
    try:
        job_id = await app.queue_manager.submit_job("echo", {})
        stored = await app.redis.hgetall(queue_key(job_id))
        fields = [text for pair in stored.items() for text in pair]  # HGETALL's flat form
        fields += ["processedOn", str(int(time.time() * 1000)), "ats", "1"]  # as moveToActive sets
        processor = JobProcessor(app, app.registry, standard_hooks(app, audit=audit))
        engine = Engine(
            redis_url=settings.redis_url,
            name="job-path",
            concurrency=1,
            process=processor,
            finish_extras=processor.finish_extras,
            on_finished=processor.on_finished,
        )

        async def one(n: int) -> None:
            job = parse_next([fields, job_id, 0, 0], f"token:{n}").job
            assert job is not None
            outcome = await processor(job)
            command, _ = engine._finishing_command(job, outcome, True)
            for part in (*processor.finish_extras(job, outcome), command):
                _pack(part)
            await processor.on_finished(job, outcome, True)

        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for n in range(jobs):
                await one(n)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
            return
        passes = []
        for _ in range(PASSES):
            began = time.perf_counter()
            for n in range(jobs):
                await one(n)
            passes.append((time.perf_counter() - began) / jobs * 1e6)
        print(
            f"job path{' with the audit entry' if audit else ''}: {min(passes):.1f} µs/job "
            f"(fastest of {PASSES} passes of {jobs:,}; median {statistics.median(passes):.1f})"
        )
    finally:
        await app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--audit", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, redis_server(Path(work)) as redis_url:
        enable_multiprocess(f"{work}/metrics")  # as a worker process records
        settings = Settings(
            redis_url=redis_url,
            database_url=f"sqlite+aiosqlite:///{work}/unused.db",
            job_modules="bench.jobs",
            metrics_dir=f"{work}/metrics",
            log_level="WARNING",
        )
        uvloop.run(_measure(settings, args.jobs, args.audit, args.profile))


if __name__ == "__main__":
    main()
