"""This system: the supervisor (`quickdapp workers`) with its worker processes and AuditWriter.

With an audit trail (PostgreSQL or SQLite) it is the real command; without one, the same
Supervisor runs bench/peers/quickdapp_worker.py, a worker built with the standard hooks less
the audit hook. A job counts as done once BullMQ completed it and, with an audit trail, once
its row is in worker_jobs.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bench.peers.base import EnqueueMode
from bench.peers.bullmq_queue import BullmqPeer, job_data
from bench.workers import Workers
from quickdapp.config import Settings
from quickdapp.queue.manager import JobRequest

Audit = Literal["postgres", "sqlite", "off"]
NAMES = {
    "postgres": "quickdapp (audit PG)",
    "sqlite": "quickdapp (audit SQLite)",
    "off": "quickdapp (no audit)",
}
START_POLL = 0.05
BULK = 1_000  # jobs per submit_jobs call in a "bulk" enqueue, as node_enqueue.js batches addBulk


class QuickdappPeer(BullmqPeer):
    enqueues = False  # the same for all three: measured for the first only (bench/compare.py)

    def __init__(self, settings: Settings, audit: Audit, metrics_dir: Path) -> None:
        super().__init__(settings)
        self.audit = audit
        self.name = NAMES[audit]
        self._metrics_dir = metrics_dir
        self._db: AsyncEngine | None = None
        self._counting: AsyncConnection | None = None  # held open: the counts are polled

    async def open(self) -> None:
        await super().open()
        if self.audit != "off":
            self._db = create_async_engine(self.settings.database_url)
            # Each count in its own transaction, on one connection: a pool checkout and the
            # ROLLBACK at its return cost ~3x the harness CPU of the count itself (~440 against
            # ~160 µs), taken from the system measured every 2-5 ms.
            connection = await self._db.connect()
            self._counting = await connection.execution_options(isolation_level="AUTOCOMMIT")

    async def close(self) -> None:
        await super().close()
        if self._counting is not None:
            await self._counting.close()
        if self._db is not None:
            await self._db.dispose()

    async def reset(self) -> None:
        await super().reset()
        if self._db is not None:
            # TRUNCATE on PostgreSQL: DELETE left the drains' dead rows for each count to visit.
            empty = (
                "TRUNCATE worker_jobs"
                if self._db.dialect.name == "postgresql"
                else "DELETE FROM worker_jobs"
            )
            async with self._db.begin() as connection:
                await connection.execute(text(empty))

    async def recorded(self) -> int | None:
        if self._counting is None:
            return None
        return int((await self._counting.execute(text("SELECT count(*) FROM worker_jobs"))).scalar_one())

    async def finished(self, n: int) -> bool:
        if not await super().finished(n):
            return False
        rows = await self.recorded()
        return rows is None or rows >= n

    async def start(self, workers: Workers, processes: int, concurrency: int) -> None:
        workers.env.update(
            REDIS_URL=self.url,
            DATABASE_URL=self.settings.database_url,
            JOB_MODULES="bench.jobs",
            WORKER_COUNT=str(processes),
            WORKER_QUEUE_CONCURRENCY=str(concurrency),
            WORKER_QUEUE_JOB_ATTEMPTS="1",
            LOG_LEVEL="WARNING",
            METRICS_DIR=str(self._metrics_dir),
        )
        if self.audit == "off":
            command = [sys.executable, "-m", "bench.peers.quickdapp_supervisor"]
        else:
            command = [sys.executable, "-m", "quickdapp.cli", "workers"]
        await workers.spawn(command, ready_line=False)
        inspect = self.app.queue_manager.inspect
        async with asyncio.timeout(60):
            while len(await inspect.worker_processes()) < processes:
                await asyncio.sleep(START_POLL)

    async def enqueue(self, mode: EnqueueMode, n: int) -> float:
        """submit_job one by one, or submit_jobs BULK at a time."""
        manager = self.app.queue_manager
        await manager.submit_job("echo", {})  # connections open, as in a running server
        started = asyncio.get_running_loop().time()
        if mode == "one":
            for _ in range(n):
                await manager.submit_job("echo", job_data("echo"))
        else:
            for first in range(0, n, BULK):
                size = min(n, first + BULK) - first
                await manager.submit_jobs([JobRequest("echo", job_data("echo"))] * size)
        return n / (asyncio.get_running_loop().time() - started)
