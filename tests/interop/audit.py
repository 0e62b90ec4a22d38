"""The audit trail (`worker_jobs`), read straight from the test's database."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from quickdapp.app.server_app import ServerApp
from quickdapp.db.schema import WorkerJob
from tests.helpers.waiting import eventually


async def all_rows(app: ServerApp) -> list[WorkerJob]:
    """Every audit row, oldest start first."""
    async with app.sessions() as session:
        rows = await session.scalars(select(WorkerJob).order_by(WorkerJob.started_at, WorkerJob.id))
        return list(rows)


async def audit_rows(
    app: ServerApp, count: int, what: str, where: Callable[[WorkerJob], bool] = lambda _: True
) -> list[WorkerJob]:
    """The audit rows matching `where`, oldest start first, once there are `count` of them."""

    async def probe() -> list[WorkerJob] | None:
        rows = [row for row in await all_rows(app) if where(row)]
        return rows if len(rows) >= count else None

    return await eventually(probe, 20, what)
