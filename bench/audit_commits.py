"""Audit rows per second on SQLite: one commit per row, against group commit, in the same run.

.venv/bin/python bench/audit_commits.py [--rows 500] [--concurrency 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from quickdapp.attempts import JobExecution
from quickdapp.audit.store import record_job_execution
from quickdapp.audit.writer import AuditWriter
from quickdapp.db.engine import create_engine, session_factory
from quickdapp.db.migrate import upgrade_async


def _row(number: int) -> JobExecution:
    now = datetime.now(UTC)
    return JobExecution(f"job{number}", 1, "echo", None, {}, "completed", now, now)


async def one_run(folder: Path, rows: int, concurrency: int) -> tuple[float, float]:
    url = f"sqlite+aiosqlite:///{folder / 'audit.sqlite3'}"
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        began = time.perf_counter()
        for number in range(rows):
            await record_job_execution(sessions, _row(number))
        one_by_one = rows / (time.perf_counter() - began)

        writer = AuditWriter(sessions)
        numbers = iter(range(rows, 2 * rows))

        async def job_slot() -> None:  # like one of `concurrency` jobs in a worker process
            for number in numbers:
                await writer.record(_row(number))

        began = time.perf_counter()
        await asyncio.gather(*(job_slot() for _ in range(concurrency)))
        grouped = rows / (time.perf_counter() - began)
        return one_by_one, grouped
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(asyncio.run(one_run(Path(tmp), args.rows, args.concurrency)))
    single = statistics.median(r[0] for r in results)
    grouped = statistics.median(r[1] for r in results)
    print(f"one commit per row: median {single:.0f} rows/s")
    ratio = grouped / single
    print(f"group commit, {args.concurrency} writers: median {grouped:.0f} rows/s ({ratio:.1f}x)")


if __name__ == "__main__":
    main()
