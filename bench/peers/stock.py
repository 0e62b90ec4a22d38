"""The stock Python bullmq Worker (bullmq as pinned), no audit, on the shared `jobs` queue.

Worker process: `python -m bench.peers.stock URL CONCURRENCY`; prints "ready" once it runs.
As DESIGN.md says, it reads the Redis version before `run()`, else its blocking waits round up
to whole seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

from bench.peers.base import EnqueueMode
from bench.peers.bullmq_queue import BullmqPeer, with_new_id
from bench.stamps import record_start
from bench.workers import Workers
from quickdapp.keys import QUEUE_NAME

BULK = 1_000  # jobs per addBulk


class StockPeer(BullmqPeer):
    name = "bullmq (Python)"
    slow = True

    async def start(self, workers: Workers, processes: int, concurrency: int) -> None:
        for _ in range(processes):
            await workers.spawn([sys.executable, "-m", "bench.peers.stock", self.url, str(concurrency)])

    async def enqueue(self, mode: EnqueueMode, n: int) -> float:
        from bullmq import Queue

        payload, opts = self.job("echo")
        queue = Queue(QUEUE_NAME, {"connection": self.url})
        try:
            await queue.add("echo", payload, with_new_id(opts))  # connections open
            started = time.perf_counter()
            if mode == "one":
                for _ in range(n):
                    await queue.add("echo", payload, with_new_id(opts))
            else:
                for first in range(0, n, BULK):
                    batch = range(first, min(n, first + BULK))
                    jobs = [{"name": "echo", "data": payload, "opts": with_new_id(opts)} for _ in batch]
                    await queue.addBulk(jobs)
            return n / (time.perf_counter() - started)
        finally:
            await queue.close()


async def _processor(job: Any, token: str) -> None:
    if job.name == "stamp":
        record_start(str(job.id))
    elif job.name == "sleep":
        await asyncio.sleep(job.data["data"]["ms"] / 1000)


async def _work(url: str, concurrency: int) -> None:
    from bullmq import Worker

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = Worker(
        QUEUE_NAME, _processor, {"connection": url, "concurrency": concurrency, "autorun": False}
    )
    await worker.blockingRedisConnection.getRedisVersion()
    await worker.redisConnection.getRedisVersion()
    running = asyncio.ensure_future(worker.run())
    await asyncio.sleep(0.2)
    if running.done():
        running.result()
    print("ready", flush=True)
    await stop.wait()
    os._exit(0)  # what is measured is over: no graceful close to wait for


if __name__ == "__main__":
    asyncio.run(_work(sys.argv[1], int(sys.argv[2])))
