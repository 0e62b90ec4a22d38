"""Throughput of the supervisor's worker processes: processes x concurrency, medians of 3 runs.

Starts its own redis-server on a free port (append-only file on, as in production) and a
SQLite audit database in a temporary folder, then for each shape runs the real supervisor
(`quickdapp workers`: child processes, heartbeats, audit rows) and times how long it takes
to drain a queue of jobs that was filled while paused:

- no-op jobs (`echo`) at 1x1, 1x50 and 2x50: jobs per second;
- 2,000 jobs of 50 ms (`sleep`) at 2x50: wall time against the bound jobs x 0.05 s / (P x C).

Every job writes its audit row, so the audit database is part of what is measured; with
`--postgres` the rows go to a throwaway PostgreSQL database (on the server the tests use,
TEST_DATABASE_URL) instead of SQLite. The job types are bench/jobs.py's.

From the repository's root (the worker processes import bench.jobs from there):

    .venv/bin/python -m bench.throughput [--jobs 2000] [--runs 3] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.services import throwaway_postgres
from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings, load_settings
from quickdapp.db.migrate import upgrade
from quickdapp.devtools.redis_manager import RedisManager
from quickdapp.workers.supervisor import Supervisor

JOB_MODULE = "bench.jobs"

NOOP_SHAPES = [(1, 1), (1, 50), (2, 50)]
SLEEP_SHAPE = (2, 50)
SLEEP_MS = 50
PENDING = ("waiting", "prioritized", "active", "delayed", "paused")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Work = list[tuple[str, dict[str, Any], int]]
"""(job type, data, jobs) to measure, in turn."""


async def _drain_time(app: ServerApp, job_type: str, data: dict[str, Any], jobs: int) -> float:
    """Fill the paused queue with `jobs` jobs, resume it, and time until none is left."""
    queue = app.queue_manager.queue
    await queue.pause()
    for start in range(0, jobs, 200):
        batch = range(start, min(start + 200, jobs))
        await asyncio.gather(*(app.queue_manager.submit_job(job_type, data) for _ in batch))
    began = time.perf_counter()
    await queue.resume()
    while True:
        if not sum((await queue.getJobCounts(*PENDING)).values()):
            return time.perf_counter() - began
        await asyncio.sleep(0.005)


async def _shape(
    settings: Settings, processes: int, concurrency: int, runs: int, work: Work
) -> list[list[float]]:
    """Run the supervisor with this shape and measure each (job type, data, jobs) of `work`."""
    shaped = settings.model_copy(
        update={"worker_count": processes, "worker_queue_concurrency": concurrency}
    )
    supervisor = Supervisor(shaped)
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run(stop))
    app = await ServerApp.create(shaped)
    try:
        while True:
            if len((await app.queue_manager.get_health()).processes) >= processes:
                break
            await asyncio.sleep(0.1)
        return [
            [await _drain_time(app, job_type, data, jobs) for _ in range(runs)]
            for job_type, data, jobs in work
        ]
    finally:
        stop.set()
        await running
        await app.close()


async def _bench(settings: Settings, jobs: int, runs: int) -> None:
    for processes, concurrency in NOOP_SHAPES:
        work: Work = [("echo", {}, jobs)]
        if (processes, concurrency) == SLEEP_SHAPE:
            work.append(("sleep", {"ms": SLEEP_MS}, jobs))
        results = await _shape(settings, processes, concurrency, runs, work)
        rates = [jobs / seconds for seconds in results[0]]
        print(
            f"no-op  {processes}x{concurrency:<3} {jobs} jobs: median {statistics.median(rates):6.0f} "
            f"jobs/s  (runs: {', '.join(f'{r:.0f}' for r in rates)})"
        )
        if len(results) > 1:
            walls = results[1]
            bound = jobs * SLEEP_MS / 1000 / (processes * concurrency)
            wall = statistics.median(walls)
            print(
                f"sleep  {processes}x{concurrency:<3} {jobs} jobs of {SLEEP_MS} ms: median wall "
                f"{wall:.2f}s vs bound {bound:.2f}s ({wall / bound:.2f}x)  "
                f"(runs: {', '.join(f'{w:.2f}' for w in walls)})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="audit rows in PostgreSQL")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = f"redis://127.0.0.1:{_free_port()}/0"
        database_url = f"sqlite+aiosqlite:///{folder / 'audit.sqlite3'}"
        if args.postgres:
            database_url = stack.enter_context(throwaway_postgres(folder / "postgres"))
        settings = load_settings(
            None,
            redis_url=url,
            database_url=database_url,
            job_modules=JOB_MODULE,
            worker_queue_job_attempts=1,
            log_level="WARNING",
        )
        upgrade(database_url)
        load = os.getloadavg()[0]
        audit = "PostgreSQL" if args.postgres else "SQLite"
        print(f"{os.cpu_count()} CPUs, load average {load:.2f}; audit in {audit}; {args.runs} runs each")
        with RedisManager(url, data_dir=folder / "redis", reuse=False):
            asyncio.run(_bench(settings, args.jobs, args.runs))


if __name__ == "__main__":
    main()
