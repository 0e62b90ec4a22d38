"""Storing the audit trail: one `worker_jobs` row per attempt, and the rollups beside them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC
from functools import cache
from typing import Any

from sqlalchemy import String, Table, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.attempts import JobExecution
from quickdapp.audit.histogram import sql_duration_bin
from quickdapp.audit.rollups import StoredAttempt, add_to_rollups
from quickdapp.db.schema import WorkerJob
from quickdapp.db.upsert import skip_statement
from quickdapp.json_text import compact


async def record_job_execution(
    sessions: async_sessionmaker[AsyncSession], execution: JobExecution
) -> None:
    """Store one attempt. Recording the same (job_id, attempt) twice keeps the first row."""
    await record_job_executions(sessions, [execution])


async def record_job_executions(
    sessions: async_sessionmaker[AsyncSession], executions: Sequence[JobExecution]
) -> int:
    """Store a batch of attempts and their rollups in one transaction; returns how many were new.

    The one way attempts enter the audit trail, for a batch of any size. An attempt already
    stored, or twice in the batch, keeps its first row and is counted in the rollups once:
    only the rows the insert reports back are added. So a batch may be retried whole after an
    error (nothing of it was committed) or delivered again after a commit (nothing changes),
    and the caller acknowledges it once this returns.
    """
    unique: dict[tuple[str, int], JobExecution] = {}
    for execution in map(_fitting, executions):
        unique.setdefault((execution.job_id, execution.attempt), execution)
    if not unique:
        return 0
    # In time order, then by key: ids follow created_at as far as one batch can make them, and
    # concurrent batches lock the rows of the same attempts in one order (see audit.rollups).
    ordered = sorted(unique.values(), key=lambda e: (e.completed_at, e.job_id, e.attempt))
    async with sessions() as session:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            # One statement whatever the batch: the rows as one array per column (asyncpg
            # sends them binary), and the rollups of those it stored. A statement is atomic
            # on its own, so it runs without BEGIN and COMMIT: one round trip, not three.
            connection = await session.connection(execution_options=_AUTOCOMMIT)
            return int((await connection.execute(_STORE, _columns(ordered))).scalar_one())
        # SQLite: multi-row INSERTs (insertmanyvalues) RETURNING the rows stored, and only
        # those enter the rollups, in one transaction.
        async with session.begin():
            inserted = await session.execute(_insert(dialect), [_row(e) for e in ordered])
            stored = [StoredAttempt(*row) for row in inserted]
            await add_to_rollups(session, stored)
    return len(stored)


_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


_TABLE: Table = WorkerJob.__table__  # type: ignore[assignment]


def _width(column: str) -> int:
    kind = _TABLE.c[column].type
    assert isinstance(kind, String) and kind.length is not None
    return kind.length


_JOB_ID_LENGTH, _TYPE_LENGTH = _width("job_id"), _width("type")


def _fitting(execution: JobExecution) -> JobExecution:
    """`execution` with a job id and type cut to their columns' widths: another producer may
    name a job at any length, and PostgreSQL would refuse the whole batch again and again."""
    if len(execution.job_id) <= _JOB_ID_LENGTH and len(execution.type) <= _TYPE_LENGTH:
        return execution
    job_id, job_type = execution.job_id[:_JOB_ID_LENGTH], execution.type[:_TYPE_LENGTH]
    return replace(execution, job_id=job_id, type=job_type)


_COLUMNS = {
    "job_id": "text",
    "attempt": "integer",
    "type": "text",
    "user_id": "bigint",
    "data": "jsonb",
    "result": "jsonb",
    "error": "text",
    "status": "text",
    "started_at": "timestamptz",
    "completed_at": "timestamptz",
    "duration_ms": "integer",
    "created_at": "timestamptz",
}
_ARRAYS = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _COLUMNS.items())


def _rollup(table: str, keys: dict[str, str]) -> str:
    """An upsert adding the stored rows to one rollup table; `keys` maps its key columns (in
    the order audit/rollups.py sorts them) to their values. Rows go in key order, so
    concurrent batches lock rollup rows in one order."""
    columns, values = ", ".join(keys), ", ".join(keys.values())
    return (
        f"INSERT INTO {table} ({columns}, attempts, duration_sum_ms) "
        f"SELECT {values}, count(*), sum(duration_ms) FROM stored "
        f"GROUP BY {values} ORDER BY {values} "
        f"ON CONFLICT ({columns}) DO UPDATE SET "
        f"attempts = {table}.attempts + excluded.attempts, "
        f"duration_sum_ms = {table}.duration_sum_ms + excluded.duration_sum_ms"
    )


_MINUTE = {"minute": "minute", "type": "type", "status": "status"}
_HOUR = {"hour": "minute / 60", "type": "type", "status": "status"}
# PostgreSQL: the rows, in the arrays' order, then the rollups of those stored (audit/rollups.py
# computes the same minutes, hours and bins in Python for SQLite), in one statement and one
# round trip; its result is how many rows were new.
_STORE = text(
    f"WITH stored AS (INSERT INTO worker_jobs ({', '.join(_COLUMNS)}) "
    f"SELECT * FROM unnest({_ARRAYS}) ON CONFLICT (job_id, attempt) DO NOTHING "
    "RETURNING type, status, duration_ms, "
    "floor(extract(epoch FROM created_at))::bigint / 60 AS minute, "
    f"{sql_duration_bin('duration_ms')} AS duration_bin), "
    f"minutes AS ({_rollup('worker_job_minutes', _MINUTE)}), "
    f"hours AS ({_rollup('worker_job_hours', _HOUR)}), "
    f"bins AS ({_rollup('worker_job_hour_bins', {**_HOUR, 'duration_bin': 'duration_bin'})}) "
    "SELECT count(*) FROM stored"
)


def _row(execution: JobExecution) -> dict[str, Any]:
    return {
        "job_id": execution.job_id,
        "attempt": execution.attempt,
        "type": execution.type,
        "user_id": execution.user_id,
        "data": execution.data,
        "result": execution.result,
        "error": execution.error,
        "status": execution.status,
        "started_at": execution.started_at,
        "completed_at": execution.completed_at,
        "duration_ms": execution.duration_ms,
        "created_at": execution.completed_at,
    }


def _columns(executions: Sequence[JobExecution]) -> dict[str, list[Any]]:
    """`executions` as one list per column for `_STORE`; JSON as text (None is JSON null, as
    SQLAlchemy's JSON type stores it), times in UTC.

    PostgreSQL's text and jsonb cannot hold U+0000, and one such character would make it refuse
    the whole batch again and again: it is stored as U+FFFD, the replacement character. JSON
    that jsonb refuses (NaN, infinities: workers no longer write them) is kept as its text.
    """
    completed = [e.completed_at.astimezone(UTC) for e in executions]
    return {
        "job_id": [_pg_text(e.job_id) for e in executions],
        "attempt": [e.attempt for e in executions],
        "type": [_pg_text(e.type) for e in executions],
        "user_id": [e.user_id for e in executions],
        "data": [_pg_json(e.data) for e in executions],
        "result": [_pg_json(e.result) for e in executions],
        "error": [_pg_text(e.error) for e in executions],
        "status": [e.status for e in executions],
        "started_at": [e.started_at.astimezone(UTC) for e in executions],
        "completed_at": completed,
        "duration_ms": [e.duration_ms for e in executions],
        "created_at": completed,
    }


# JSON's escape of U+0000 (not an escaped backslash followed by "u0000").
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _pg_text(value: str | None) -> str | None:
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def _pg_json(value: Any) -> str:
    try:
        encoded = compact(value)
    except ValueError:  # NaN or an infinity, which jsonb refuses: kept as text
        encoded = compact(repr(value))
    return _NUL_ESCAPE.sub(r"\1\\ufffd", encoded) if "\\u0000" in encoded else encoded


@cache
def _insert(dialect: str) -> Any:
    columns = _TABLE.c
    return skip_statement(dialect, _TABLE, ("job_id", "attempt")).returning(
        columns.type, columns.status, columns.created_at, columns.duration_ms
    )
