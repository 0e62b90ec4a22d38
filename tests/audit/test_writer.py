"""Group commit of audit rows: one transaction for rows that finish together, none lost."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from quickdapp.app.server_app import ServerApp
from quickdapp.attempts import JobExecution
from quickdapp.audit.history import get_job_history
from quickdapp.audit.writer import AuditWriter


def _execution(job_id: str, result: Any = None) -> JobExecution:
    now = datetime.now(UTC)
    return JobExecution(job_id, 1, "echo", None, {}, "completed", now, now, result=result)


async def test_rows_arriving_together_share_commits_and_all_are_stored(app: ServerApp) -> None:
    commits = 0

    def count(_connection: Any) -> None:
        nonlocal commits
        commits += 1

    event.listen(app.engine.sync_engine, "commit", count)
    writer = AuditWriter(app.sessions)
    await asyncio.gather(*(writer.record(_execution(f"j{i}")) for i in range(50)))
    event.remove(app.engine.sync_engine, "commit", count)

    assert (await get_job_history(app.sessions, limit=100)).total == 50
    assert commits <= 3, f"50 rows took {commits} commits"


async def test_a_bad_row_fails_alone_and_the_others_are_stored(app: ServerApp) -> None:
    writer = AuditWriter(app.sessions)
    outcomes = await asyncio.gather(
        *(writer.record(_execution(f"j{i}", result=object() if i == 3 else i)) for i in range(6)),
        return_exceptions=True,
    )

    assert [isinstance(outcome, Exception) for outcome in outcomes] == [False] * 3 + [True] + [False] * 2
    rows = (await get_job_history(app.sessions)).items
    assert sorted(row.job_id for row in rows) == ["j0", "j1", "j2", "j4", "j5"]
    assert "is not JSON serializable" in str(outcomes[3])
