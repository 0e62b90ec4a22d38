"""No-op job throughput of one worker process: jobs/s, median of 3 runs.

Starts its own redis-server on a free port and a SQLite audit database in a temporary folder,
queues N `echo` jobs, then times one in-process worker (the code `quickdapp worker` runs)
draining them: every job goes through the processor and writes its audit row.

    .venv/bin/python bench/noop_throughput.py [--jobs 2000] [--concurrency 1] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.helpers.jobs

from quickdapp.app import ServerApp
from quickdapp.config import load_settings
from quickdapp.db.migrate import upgrade_async
from quickdapp.devtools.redis_manager import RedisManager
from quickdapp.workers.process import run_worker

PENDING = ("waiting", "prioritized", "active", "delayed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def one_run(redis_url: str, folder: Path, jobs: int, concurrency: int) -> float:
    settings = load_settings(
        None,
        redis_url=redis_url,
        database_url=f"sqlite+aiosqlite:///{folder / 'audit.sqlite3'}",
        job_modules="tests.helpers.jobs",
        worker_queue_concurrency=concurrency,
        worker_queue_job_attempts=1,
        log_level="WARNING",
    )
    await upgrade_async(settings.database_url)
    app = await ServerApp.create(settings)
    try:
        await app.redis.flushdb()
        for _ in range(jobs):
            await app.queue_manager.submit_job("echo", {})
        stop = asyncio.Event()
        began = time.perf_counter()
        worker = asyncio.create_task(run_worker(app, stop))
        # Completed jobs are trimmed to the last 100, so wait for the queue to empty instead.
        while sum((await app.queue_manager.queue.getJobCounts(*PENDING)).values()):
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - began
        stop.set()
        await worker
        return jobs / elapsed
    finally:
        await app.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"redis://127.0.0.1:{_free_port()}/0"
        with RedisManager(url, data_dir=folder / "redis", reuse=False, appendonly=False):
            rates = []
            for run in range(args.runs):
                rate = asyncio.run(one_run(url, folder / f"run{run}", args.jobs, args.concurrency))
                rates.append(rate)
                print(f"run {run + 1}: {rate:.0f} jobs/s")
    print(
        f"1 process x concurrency {args.concurrency}, {args.jobs} no-op jobs: "
        f"median {statistics.median(rates):.0f} jobs/s over {args.runs} runs"
    )


if __name__ == "__main__":
    main()
