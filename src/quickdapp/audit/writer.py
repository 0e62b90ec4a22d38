"""Group commit for the audit trail: attempts that finish together share one transaction.

Each commit waits for the disk (SQLite's single writer makes them queue); with many jobs in
flight, one commit per job caps a worker process at the database's commit rate. Here the rows
that arrive while a commit is running go in the next one, and every caller still waits until
its own row is stored, so a job is never reported done before its audit row is.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.attempts import JobExecution
from quickdapp.audit.store import record_job_executions


class AuditWriter:
    """Writes audit rows for one process, batching those that arrive during a commit."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._pending: list[tuple[JobExecution, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def record(self, execution: JobExecution) -> None:
        """Store `execution`; returns once it is committed, raises if its batch failed."""
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((execution, stored))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await stored

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await record_job_executions(self._sessions, [execution for execution, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch, exc)
                    continue
                # One bad row must not cost the others theirs: write them one by one.
                for item in batch:
                    try:
                        await record_job_executions(self._sessions, [item[0]])
                    except Exception as row_error:
                        _settle([item], row_error)
                    else:
                        _settle([item], None)
            else:
                _settle(batch, None)


def _settle(batch: list[tuple[JobExecution, asyncio.Future[None]]], error: BaseException | None) -> None:
    for _, stored in batch:
        if stored.done():
            continue
        if error is None:
            stored.set_result(None)
        else:
            stored.set_exception(error)
