"""Audit rows for the scale benchmark: a production-like mix, written by COPY (or executemany).

The rows are spread evenly over SPAN ending now (30 days of retention plus 1.5 days past it,
so ~4.8 % of them, 143k of 3M, are due for cleanup), newest last, as a live system writes
them. Of every 10,000 attempts, about:

- 9,895 watchChain (no user; ~40 ms, log-normal), 1 % of them failed (an RPC error);
- 100 deployMulticall3 for one of 2,000 users (~2.5 s), 5 % failed;
- 5 cleanupAuditLog (~0.9 s), 0.5 % failed.

Each row is its own job's only attempt, so every failed one is a job without a completed row,
which is what cleanupAuditLog has to ask Redis about.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex

from quickdapp.db.schema import WorkerJob

SPAN = timedelta(days=31, hours=12)
COLUMNS = [
    "job_id",
    "attempt",
    "type",
    "user_id",
    "data",
    "result",
    "error",
    "status",
    "started_at",
    "completed_at",
    "duration_ms",
    "created_at",
]
USERS = 2000
# type, share of attempts, median ms, spread (sigma of the log), failure rate, data
MIX = [
    ("watchChain", 0.9895, 40.0, 0.5, 0.01, {}),
    ("deployMulticall3", 0.0100, 2500.0, 0.4, 0.05, {}),
    ("cleanupAuditLog", 0.0005, 900.0, 0.6, 0.005, {"retentionDays": 30}),
]


def rows(count: int, end: datetime, *, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """`count` audit rows in COLUMNS order, oldest first, the last one ending at `end`."""
    rng = random.Random(seed)
    start = end - SPAN
    step = SPAN / count
    thresholds = []
    total = 0.0
    for kind in MIX:
        total += kind[1]
        thresholds.append((total, kind))
    for index in range(count):
        pick = rng.random() * total
        job_type, _, median, sigma, failure_rate, data = next(k for t, k in thresholds if pick < t)
        failed = rng.random() < failure_rate
        duration = max(1, round(rng.lognormvariate(math.log(median), sigma)))
        completed_at = start + step * (index + 1)
        yield (
            f"{job_type}-{index}",
            1,
            job_type,
            rng.randint(1, USERS) if job_type == "deployMulticall3" else None,
            json.dumps(data),
            None if failed else json.dumps({"ok": True}),
            "RuntimeError: upstream RPC error (attempt 1)" if failed else None,
            "failed" if failed else "completed",
            completed_at - timedelta(milliseconds=duration),
            completed_at,
            duration,
            completed_at,
        )


def _secondary_indexes() -> list[Any]:
    """worker_jobs' indexes as the model declares them (the migrations create the same)."""
    table = cast(Table, WorkerJob.__table__)
    return sorted(table.indexes, key=lambda index: str(index.name))


async def fill_postgres(url: str, count: int, end: datetime) -> None:
    """COPY `count` rows into worker_jobs; its history indexes are built afterwards, as a
    restore would, which is much faster than keeping them up to date row by row."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for index in _secondary_indexes():
            await connection.execute(f'DROP INDEX "{index.name}"')
        batch: list[tuple[Any, ...]] = []
        for row in rows(count, end):
            batch.append(row)
            if len(batch) == 100_000:
                await connection.copy_records_to_table("worker_jobs", records=batch, columns=COLUMNS)
                batch = []
        if batch:
            await connection.copy_records_to_table("worker_jobs", records=batch, columns=COLUMNS)
        await connection.execute("SET maintenance_work_mem = '256MB'")
        for index in _secondary_indexes():
            dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
            await connection.execute(str(CreateIndex(index).compile(dialect=dialect)))
    finally:
        await connection.close()


def fill_sqlite(path: str, count: int, end: datetime) -> None:
    """Insert `count` rows into the SQLite file's worker_jobs in one transaction."""
    connection = sqlite3.connect(path)
    try:
        for index in _secondary_indexes():
            connection.execute(f'DROP INDEX "{index.name}"')
        placeholders = ", ".join("?" for _ in COLUMNS)
        statement = f"INSERT INTO worker_jobs ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        connection.executemany(statement, (_sqlite_row(row) for row in rows(count, end)))
        for index in _secondary_indexes():
            connection.execute(str(CreateIndex(index).compile(dialect=sqlite_dialect.dialect())))
        connection.commit()
    finally:
        connection.close()


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # As UtcDateTime stores them on SQLite: UTC, without the zone.
    return tuple(
        value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        if isinstance(value, datetime)
        else value
        for value in row
    )
