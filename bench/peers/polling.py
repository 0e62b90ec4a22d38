"""A minimal database-polling queue on PostgreSQL: the model the plan replaces.

One table; each of P processes runs C asyncio loops that claim one job at a time with
`FOR UPDATE SKIP LOCKED`, run it, mark it done, and sleep 1 s whenever nothing is due. A loop
holds a pooled connection only while it talks to the database (pool of min(C, POOL) per
process: PostgreSQL's default max_connections is 100). Held jobs have status 'held' until one
UPDATE makes them 'queued'.

Worker process: `python -m bench.peers.polling DSN CONCURRENCY`; prints "ready".
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import asyncpg

from bench.peers.base import SLEEP_MS, EnqueueMode, Kind, Peer
from bench.stamps import record_start
from bench.workers import Workers

POLL_S = 1.0
POOL = 10
SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_jobs (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    data jsonb NOT NULL DEFAULT '{}',
    run_at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL DEFAULT 'queued'
);
CREATE INDEX IF NOT EXISTS bench_jobs_due ON bench_jobs (id) WHERE status = 'queued';
"""
CLAIM = """
UPDATE bench_jobs SET status = 'running'
WHERE id = (
    SELECT id FROM bench_jobs WHERE status = 'queued' AND run_at <= now()
    ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1
)
RETURNING id, name
"""
ADD = """
INSERT INTO bench_jobs (name, run_at, status) VALUES ($1, now() + $2 * interval '1 ms', $3)
RETURNING id
"""


class PollingPeer(Peer):
    name = "DB polling (PG)"
    slow = True

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._db: asyncpg.Connection | None = None

    @property
    def db(self) -> asyncpg.Connection:
        assert self._db is not None, "open() first"
        return self._db

    async def open(self) -> None:
        self._db = await asyncpg.connect(self.dsn)
        await self.db.execute(SCHEMA)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()

    async def reset(self) -> None:
        await self.db.execute("TRUNCATE bench_jobs")

    async def start(self, workers: Workers, processes: int, concurrency: int) -> None:
        for _ in range(processes):
            await workers.spawn(
                [sys.executable, "-m", "bench.peers.polling", self.dsn, str(concurrency)]
            )

    async def fill_held(self, kind: Kind, n: int) -> None:
        await self.db.copy_records_to_table(
            "bench_jobs", records=[(kind, "held")] * n, columns=["name", "status"]
        )

    async def release(self) -> None:
        await self.db.execute("UPDATE bench_jobs SET status = 'queued' WHERE status = 'held'")

    async def finished(self, n: int) -> bool:
        left = await self.db.fetchval(
            "SELECT count(*) FROM bench_jobs WHERE status <> 'done' AND run_at <= now()"
        )
        return int(left) == 0

    async def add(self, kind: Kind, delay_ms: int = 0) -> str:
        return str(await self.db.fetchval(ADD, kind, delay_ms, "queued"))

    async def enqueue(self, mode: EnqueueMode, n: int) -> float:
        started = time.perf_counter()
        if mode == "one":
            for _ in range(n):
                await self.db.fetchval(ADD, "echo", 0, "queued")
        else:
            await self.db.copy_records_to_table("bench_jobs", records=[("echo",)] * n, columns=["name"])
        return n / (time.perf_counter() - started)


async def _loop(pool: asyncpg.Pool) -> None:
    while True:
        async with pool.acquire() as db:
            job = await db.fetchrow(CLAIM)
        if job is None:
            await asyncio.sleep(POLL_S)
            continue
        if job["name"] == "stamp":
            record_start(str(job["id"]))
        elif job["name"] == "sleep":
            await asyncio.sleep(SLEEP_MS / 1000)
        async with pool.acquire() as db:
            await db.execute("UPDATE bench_jobs SET status = 'done' WHERE id = $1", job["id"])


async def _work(dsn: str, concurrency: int) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    size = min(concurrency, POOL)
    pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
    loops = [asyncio.create_task(_loop(pool)) for _ in range(concurrency)]
    print("ready", flush=True)
    await stop.wait()
    for task in loops:
        task.cancel()
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(_work(sys.argv[1], int(sys.argv[2])))
