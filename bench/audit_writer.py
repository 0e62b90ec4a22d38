"""How fast the audit writer moves entries from the Redis stream into `worker_jobs`.

`PYTHONPATH=. .venv/bin/python bench/audit_writer.py [--entries N] [--runs R] [--rate J]
[--period S]` times one AuditWriter moving N entries of short completed jobs (as workers write
them) from a private Redis into a throwaway PostgreSQL database; prints, per run, the rows per
second, the writer's CPU per row (this process's CPU time) and the database server's (the CPU
time of every `postgres` process on this machine: run it with nothing else using PostgreSQL),
then medians of R runs.

Without `--rate` the stream is filled first and drained at full speed (batches of 1,000). With
`--rate J`, another process adds the entries at J per second while the writer runs, as workers
at that rate would, which is where the writer's gathering period (`--period`, seconds; 0 turns
it off) decides how many entries a batch holds. The writer runs on uvloop, as in the supervisor.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvloop

from bench.redis_server import redis_server
from bench.services import throwaway_postgres
from quickdapp.attempts import JobExecution
from quickdapp.audit.store import record_job_executions
from quickdapp.audit.stream import FIELD, decode, encode
from quickdapp.audit.writer import PERIOD, AuditWriter
from quickdapp.broker.connection import Connection
from quickdapp.db.engine import create_engine, session_factory
from quickdapp.db.migrate import upgrade_async
from quickdapp.keys import AUDIT_STREAM

TICK = 0.005  # seconds between the adds of a paced run


def _postgres_cpu() -> float:
    """CPU seconds of every `postgres` process here, with those of its ended children."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if not Path(f"/proc/{pid}/comm").read_text().startswith("postgres"):
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        total += sum(int(ticks) for ticks in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def _entries(first: int, count: int, run: int) -> list[tuple[str, ...]]:
    now = datetime.now(UTC)
    return [
        (
            "XADD", AUDIT_STREAM, "*", FIELD,
            encode(JobExecution(
                f"r{run}-{n}", 1, "echo", None, {}, "completed", now - timedelta(milliseconds=3), now,
            )),
        )
        for n in range(first, first + count)
    ]  # fmt: skip


async def _add(redis_url: str, entries: int, run: int, rate: float | None) -> None:
    """All `entries` at once, or `rate` per second in a batch every TICK."""
    conn = Connection(redis_url)
    try:
        step = 1_000 if rate is None else max(1, round(rate * TICK))
        started = time.monotonic()
        for first in range(0, entries, step):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + first / rate - time.monotonic()))
            await conn.transaction(_entries(first, min(step, entries - first), run))
    finally:
        await conn.close()


def _add_in_process(redis_url: str, entries: int, run: int, rate: float, ready: Any, go: Any) -> None:
    ready.set()
    go.wait()
    asyncio.run(_add(redis_url, entries, run, rate))


async def _drain(
    redis_url: str, database_url: str, entries: int, run: int, rate: float | None, period: float
) -> tuple[float, float, float]:
    conn = Connection(redis_url)
    engine = create_engine(database_url, pre_ping=False)  # as the writer runs (workers/process.py)
    sessions = session_factory(engine)
    context = multiprocessing.get_context("spawn")
    ready, go = context.Event(), context.Event()
    adder: multiprocessing.process.BaseProcess | None = None
    try:
        # A first row: the connection, the statement and the pool are ready before timing.
        await record_job_executions(sessions, [decode(_entries(0, 1, -1 - run)[0][-1])])
        if rate is None:
            await _add(redis_url, entries, run, None)
        else:  # in another process: this one's CPU time is then the writer's alone
            adder = context.Process(
                target=_add_in_process, args=(redis_url, entries, run, rate, ready, go)
            )
            adder.start()
            await asyncio.to_thread(ready.wait)
        stop = asyncio.Event()
        writer = AuditWriter(redis_url, sessions, consumer=f"bench-{run}", period=period)

        async def stop_when_drained() -> None:
            while (adder is not None and adder.is_alive()) or await conn.execute("XLEN", AUDIT_STREAM):
                await asyncio.sleep(0.01)
            stop.set()

        wall, cpu, database = time.perf_counter(), time.process_time(), _postgres_cpu()
        go.set()
        await asyncio.gather(writer.run(stop, drain_timeout=0), stop_when_drained())
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        database = _postgres_cpu() - database
        return entries / wall, cpu / entries * 1e6, database / entries * 1e6
    finally:
        if adder is not None:
            adder.join()
        await conn.close()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, help="entries per second, added while it runs")
    parser.add_argument("--period", type=float, default=PERIOD, help="the writer's period, s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        with redis_server(Path(work)) as redis_url, throwaway_postgres(Path(work)) as database_url:
            asyncio.run(upgrade_async(database_url))
            results = [
                uvloop.run(_drain(redis_url, database_url, args.entries, run, args.rate, args.period))
                for run in range(args.runs)
            ]
    for rate, cpu, database in results:
        print(f"{rate:,.0f} rows/s, writer CPU {cpu:.1f} us/row, PostgreSQL CPU {database:.1f} us/row")
    rates, cpus, databases = zip(*results, strict=True)
    paced = f" added at {args.rate:,.0f}/s" if args.rate else ""
    print(
        f"median of {args.runs} x {args.entries:,} entries{paced}, period {args.period} s: "
        f"{statistics.median(rates):,.0f} rows/s, writer CPU {statistics.median(cpus):.1f} us/row, "
        f"PostgreSQL CPU {statistics.median(databases):.1f} us/row"
    )


if __name__ == "__main__":
    main()
