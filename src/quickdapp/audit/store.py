"""Storing the audit trail: one `worker_jobs` row per attempt, and the rollups beside them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC
from functools import cache
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.attempts import JobExecution
from quickdapp.audit.rollups import StoredAttempt, add_to_rollups
from quickdapp.db.schema import WorkerJob
from quickdapp.db.upsert import skip_statement


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
    for execution in executions:
        unique.setdefault((execution.job_id, execution.attempt), execution)
    if not unique:
        return 0
    # In time order, then by key: ids follow created_at as far as one batch can make them, and
    # concurrent batches lock the rows of the same attempts in one order (see audit.rollups).
    ordered = sorted(unique.values(), key=lambda e: (e.completed_at, e.job_id, e.attempt))
    async with sessions.begin() as session:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            # One statement whatever the batch: a column per array parameter (asyncpg sends
            # them binary), RETURNING only the rows stored.
            inserted = await session.execute(_UNNEST_INSERT, _columns(ordered))
        else:
            # A list of rows goes out as multi-row INSERTs (insertmanyvalues), RETURNING the
            # rows stored.
            inserted = await session.execute(_insert(dialect), [_row(e) for e in ordered])
        # Those rows, and only those, enter the rollups.
        stored = [StoredAttempt(*row) for row in inserted]
        await add_to_rollups(session, stored)
    return len(stored)


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
_UNNEST_INSERT = text(
    f"INSERT INTO worker_jobs ({', '.join(_COLUMNS)}) SELECT * FROM unnest({_ARRAYS}) "
    "ON CONFLICT (job_id, attempt) DO NOTHING "
    "RETURNING type, status, created_at, duration_ms"
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
    """`executions` as one list per column; JSON as text (None is JSON null, as SQLAlchemy's
    JSON type stores it), times in UTC."""
    completed = [e.completed_at.astimezone(UTC) for e in executions]
    return {
        "job_id": [e.job_id for e in executions],
        "attempt": [e.attempt for e in executions],
        "type": [e.type for e in executions],
        "user_id": [e.user_id for e in executions],
        "data": [_json(e.data) for e in executions],
        "result": [_json(e.result) for e in executions],
        "error": [e.error for e in executions],
        "status": [e.status for e in executions],
        "started_at": [e.started_at.astimezone(UTC) for e in executions],
        "completed_at": completed,
        "duration_ms": [e.duration_ms for e in executions],
        "created_at": completed,
    }


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@cache
def _insert(dialect: str) -> Any:
    table: Table = WorkerJob.__table__  # type: ignore[assignment]
    columns = table.c
    return skip_statement(dialect, table, ("job_id", "attempt")).returning(
        columns.type, columns.status, columns.created_at, columns.duration_ms
    )
