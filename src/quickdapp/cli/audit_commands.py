"""The audit trail's commands: history, rollups rebuild and migrate."""

from __future__ import annotations

import argparse

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import Cursor, get_job_history
from quickdapp.audit.rollups import ensure_rollups, rebuild_rollups
from quickdapp.cli.connections import with_app, with_database
from quickdapp.cli.output import print_json
from quickdapp.config import Settings
from quickdapp.errors import ServiceUnavailableError
from quickdapp.redaction import describe, redact


def history(settings: Settings, args: argparse.Namespace) -> int:
    """`quickdapp history`: one page of audit rows as JSON, with the cursors of the next ones."""
    before = Cursor.parse(args.before) if args.before else None
    after = Cursor.parse(args.after) if args.after else None

    async def page_of_rows(app: ServerApp) -> None:
        page = await get_job_history(
            app.sessions,
            type=args.type,
            status=args.status,
            user_id=args.user_id,
            since=args.since,
            until=args.until,
            limit=args.limit,
            before=before,
            after=after,
        )
        rows = [
            {column: getattr(row, column) for column in row.__table__.columns.keys()}
            for row in page.items
        ]
        print_json(
            {
                "total": page.total,
                "total_exact": page.total_exact,
                "older": str(page.older) if page.older else None,
                "newer": str(page.newer) if page.newer else None,
                "items": rows,
            }
        )

    return with_app(settings, page_of_rows)


def rollups_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    """`quickdapp rollups rebuild`: recompute the rollups from worker_jobs."""

    async def rebuild(sessions: async_sessionmaker[AsyncSession]) -> None:
        report = await rebuild_rollups(sessions, since=args.since, until=args.until)
        if report.first_hour is None or report.last_hour is None:
            print("no audit rows to roll up")
            return
        print(
            f"rebuilt the rollups of {report.hours} hour(s) from {report.rows} audit row(s), "
            f"{report.first_hour.isoformat()} to {report.last_hour.isoformat()}"
        )

    return with_database(settings, rebuild)


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    """`quickdapp migrate`: apply the migrations, then roll up rows written before rollups."""
    from quickdapp.db.migrate import upgrade

    url = settings.database_url
    try:
        upgrade(url)
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        raise ServiceUnavailableError(
            f"the database at {redact(url)} cannot be migrated ({describe(exc, url)})"
        ) from None
    with_database(settings, roll_up_existing_rows)
    print(f"database at {redact(url)} is up to date")
    return 0


async def roll_up_existing_rows(sessions: async_sessionmaker[AsyncSession]) -> None:
    """After migration 0003, an audit trail written before it gets its rollups once."""
    report = await ensure_rollups(sessions)
    if report is not None:
        print(f"rolled up {report.rows} existing audit row(s) into {report.hours} hour(s)")
