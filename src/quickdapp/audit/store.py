"""Storing the audit trail: one `worker_jobs` row per attempt, and the rollups beside them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from typing import Any

from sqlalchemy import String, Table, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.attempts import JobExecution
from quickdapp.audit.histogram import sql_duration_bin
from quickdapp.audit.rollups import StoredAttempt, add_to_rollups
from quickdapp.audit.stream import NotAnEntry, decode, encode
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

    An attempt already stored, or twice in the batch, keeps its first row and is counted in the
    rollups once: only the rows the insert reports back are added. So a batch may be retried
    whole after an error (nothing of it was committed) or delivered again after a commit
    (nothing changes), and the caller acknowledges it once this returns.
    """
    if _on_postgresql(sessions):
        return await _store_entries(sessions, [encode(execution) for execution in executions])
    return await _store_executions(sessions, executions)


async def record_entries(sessions: async_sessionmaker[AsyncSession], entries: Sequence[str]) -> int:
    """`record_job_executions` for attempts as the audit stream holds them (audit/stream.py).

    PostgreSQL reads the entries' JSON itself, so the audit writer hands them on as it read
    them. An entry that is not an attempt makes the whole batch fail: PostgreSQL refuses it
    (SQLSTATE class 22 or 23), SQLite's path raises NotAnEntry.
    """
    if _on_postgresql(sessions):
        return await _store_entries(sessions, entries)
    return await _store_executions(sessions, [decode(entry) for entry in entries])


def _on_postgresql(sessions: async_sessionmaker[AsyncSession]) -> bool:
    return bool(sessions.kw["bind"].dialect.name == "postgresql")


async def _store_entries(sessions: async_sessionmaker[AsyncSession], entries: Sequence[str]) -> int:
    """PostgreSQL: one statement whatever the batch, the entries as one JSON array (read by
    the server, not here), and the rollups of the rows it stored. A statement is atomic on its
    own, so it runs without BEGIN and COMMIT: one round trip, not three."""
    if not entries:
        return 0
    async with sessions() as session:
        connection = await session.connection(execution_options=_AUTOCOMMIT)
        result = await connection.execute(_STORE, {"entries": f"[{','.join(map(_pg_entry, entries))}]"})
        return int(result.scalar_one())


async def _store_executions(
    sessions: async_sessionmaker[AsyncSession], executions: Sequence[JobExecution]
) -> int:
    """SQLite: multi-row INSERTs (insertmanyvalues) RETURNING the rows stored, and only those
    enter the rollups, in one transaction."""
    unique: dict[tuple[str, int], JobExecution] = {}
    for execution in map(_fitting, executions):
        unique.setdefault((execution.job_id, execution.attempt), execution)
    if not unique:
        return 0
    # In time order, then by key: ids follow created_at as far as one batch can make them.
    ordered = sorted(unique.values(), key=lambda e: (e.completed_at, e.job_id, e.attempt))
    async with sessions() as session, session.begin():
        inserted = await session.execute(
            _insert(session.get_bind().dialect.name), [_row(e) for e in ordered]
        )
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
    """`execution` with a job id and type cut to their columns' widths, as `_FROM_ENTRY` cuts
    them for PostgreSQL (which would refuse the whole batch again and again): another producer
    may name a job at any length."""
    if len(execution.job_id) <= _JOB_ID_LENGTH and len(execution.type) <= _TYPE_LENGTH:
        return execution
    job_id, job_type = execution.job_id[:_JOB_ID_LENGTH], execution.type[:_TYPE_LENGTH]
    return replace(execution, job_id=job_id, type=job_type)


# An entry's fields as PostgreSQL reads them (audit/stream.py's encode): as json, which it only
# checks, rather than jsonb, which it builds (that took half its time per row).
_FIELDS = (
    "job_id text, attempt integer, type text, user_id bigint, data json, result json, "
    "error text, status text, started_at timestamptz, completed_at timestamptz"
)
# Each column of a row from those, a job id and type cut to their widths (as `_fitting` does).
_FROM_ENTRY = {
    "job_id": f"left(job_id, {_JOB_ID_LENGTH})",
    "attempt": "attempt",
    "type": f"left(type, {_TYPE_LENGTH})",
    "user_id": "user_id",
    "data": "data::jsonb",
    "result": "result::jsonb",
    "error": "error",
    "status": "status",
    "started_at": "started_at",
    "completed_at": "completed_at",
    # JobExecution.duration_ms: Python's round() of a float halves to even, as float8's does.
    "duration_ms": "round(extract(epoch FROM completed_at - started_at)::float8 * 1000)::integer",
    "created_at": "completed_at",
}


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
# PostgreSQL: the entries' rows, in time order then by key (the order audit/rollups.py locks
# in), then the rollups of those stored (audit/rollups.py computes the same minutes, hours and
# bins in Python for SQLite), in one statement and one round trip; its result is how many were
# new.
_STORE = text(
    f"WITH stored AS (INSERT INTO worker_jobs ({', '.join(_FROM_ENTRY)}) "
    f"SELECT {', '.join(_FROM_ENTRY.values())} "
    f"FROM json_to_recordset(CAST(:entries AS json)) AS e({_FIELDS}) "
    "ORDER BY completed_at, job_id, attempt ON CONFLICT (job_id, attempt) DO NOTHING "
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


# JSON's escape of U+0000 (not an escaped backslash followed by "u0000").
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
# What an entry holds only when PostgreSQL cannot read it as it is: the stalled check's capture
# (another shape), NaN or an infinity (JSON has neither, jsonb refuses them). Text that merely
# contains one of these takes the longer way too, with the same row at the end.
_IRREGULAR = ('"stalled"', "NaN", "Infinity")


def _pg_entry(entry: str) -> str:
    """`entry` as PostgreSQL can store it: the usual entry as it is; the others decoded here,
    with a value jsonb refuses (NaN, an infinity) kept as its text. U+0000, which neither text
    nor jsonb can hold, becomes U+FFFD, the replacement character: one such character would
    otherwise make PostgreSQL refuse the whole batch again and again. An entry that is not an
    attempt is left as it is, for PostgreSQL to refuse."""
    if any(marker in entry for marker in _IRREGULAR):
        try:
            execution = decode(entry)
        except NotAnEntry:
            return entry
        entry = encode(replace(execution, data=_jsonb(execution.data), result=_jsonb(execution.result)))
    return _NUL_ESCAPE.sub(r"\1\\ufffd", entry) if "\\u0000" in entry else entry


def _jsonb(value: Any) -> Any:
    try:
        compact(value)
    except ValueError:  # NaN or an infinity, which jsonb refuses: kept as text
        return repr(value)
    return value


@cache
def _insert(dialect: str) -> Any:
    columns = _TABLE.c
    return skip_statement(dialect, _TABLE, ("job_id", "attempt")).returning(
        columns.type, columns.status, columns.created_at, columns.duration_ms
    )
