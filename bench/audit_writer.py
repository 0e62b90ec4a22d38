"""How fast the audit writer moves entries from the Redis stream into `worker_jobs`.

`PYTHONPATH=. .venv/bin/python bench/audit_writer.py [--entries N] [--runs R]` fills the audit
stream of a private Redis with N entries of short completed jobs (as workers write them), then
times one AuditWriter draining them into a throwaway PostgreSQL database; prints, per run, the
rows per second and the writer's CPU per row (its process's CPU time, so the database server's
share is not in it). Medians are of R runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.redis_server import redis_server
from bench.services import throwaway_postgres
from quickdapp.attempts import JobExecution
from quickdapp.audit.stream import FIELD, encode
from quickdapp.audit.writer import AuditWriter
from quickdapp.broker.connection import Connection
from quickdapp.db.engine import create_engine, session_factory
from quickdapp.db.migrate import upgrade_async
from quickdapp.keys import AUDIT_STREAM


async def _fill(conn: Connection, entries: int, run: int) -> None:
    now = datetime.now(UTC)
    for first in range(0, entries, 1_000):
        await conn.transaction(
            [
                (
                    "XADD", AUDIT_STREAM, "*", FIELD,
                    encode(JobExecution(
                        f"r{run}-{n}", 1, "echo", None, {}, "completed",
                        now - timedelta(milliseconds=3), now,
                    )),
                )
                for n in range(first, min(entries, first + 1_000))
            ]
        )  # fmt: skip


async def _drain(redis_url: str, database_url: str, entries: int, run: int) -> tuple[float, float]:
    conn = Connection(redis_url)
    engine = create_engine(database_url)
    try:
        await _fill(conn, entries, run)
        stop = asyncio.Event()
        writer = AuditWriter(redis_url, session_factory(engine), consumer=f"bench-{run}")

        async def stop_when_drained() -> None:
            while await conn.execute("XLEN", AUDIT_STREAM):
                await asyncio.sleep(0.005)
            stop.set()

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(writer.run(stop, drain_timeout=0), stop_when_drained())
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return entries / wall, cpu / entries * 1e6
    finally:
        await conn.close()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        with redis_server(Path(work)) as redis_url, throwaway_postgres(Path(work)) as database_url:
            asyncio.run(upgrade_async(database_url))
            results = [
                asyncio.run(_drain(redis_url, database_url, args.entries, run))
                for run in range(args.runs)
            ]
    for rate, cpu in results:
        print(f"{rate:,.0f} rows/s, writer CPU {cpu:.1f} us/row")
    rates, cpus = zip(*results, strict=True)
    print(
        f"median of {args.runs} x {args.entries:,} entries: {statistics.median(rates):,.0f} rows/s, "
        f"writer CPU {statistics.median(cpus):.1f} us/row"
    )


if __name__ == "__main__":
    main()
