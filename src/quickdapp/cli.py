"""The `quickdapp` command: dev, worker, submit, health, history, rollups, migrate, schedules."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import MAX_LIMIT, Cursor, get_job_history, wait_for_rows
from quickdapp.audit.rollups import ensure_rollups, rebuild_rollups
from quickdapp.config import Settings, load_settings
from quickdapp.db.engine import create_engine, session_factory
from quickdapp.errors import (
    PermanentJobError,
    ServiceUnavailableError,
    SettingsError,
    StartupRefusedError,
)
from quickdapp.limits import MAX_BIGINT, MAX_DELAY_MS, MAX_WAIT_SECONDS, check_seconds, shown
from quickdapp.logs import configure_logging
from quickdapp.queue.intervals import format_interval, parse_interval
from quickdapp.queue.manager import CronJob
from quickdapp.redaction import describe, redact

if TYPE_CHECKING:
    from quickdapp.workers.supervisor import Supervisor

# Each command imports what it needs when it runs: `submit` must not pay for FastAPI, uvicorn,
# Alembic or web3, nor a worker process for the web server.

logger = logging.getLogger("quickdapp")

DEV_REDIS_DIR = Path(".data/redis")
DEV_ANVIL_DIR = Path(".data/anvil")
AUDIT_LAG = 5.0  # seconds `submit --wait` waits for the audit rows after the job ends


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.env_file)
    except SettingsError as exc:
        print(f"quickdapp: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, secrets=settings.secret_values)
    try:
        result: int = args.command(settings, args)
        return result
    except (
        PermanentJobError,
        ValueError,
        LookupError,
        SettingsError,
        RedisConnectionError,
        ServiceUnavailableError,
        StartupRefusedError,
    ) as exc:
        print(f"quickdapp: {exc}", file=sys.stderr)
        return 2


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in low..high."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer in {low}..{high}, got {shown(text)}")
        return value

    return parse


def _seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds, at most MAX_WAIT_SECONDS."""
    try:
        return check_seconds("seconds", float(text), MAX_WAIT_SECONDS)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds in (0, {MAX_WAIT_SECONDS:g}], got {shown(text)}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="quickdapp", description=__doc__)
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    dev = commands.add_parser(
        "dev", help="start Redis (and anvil) if needed, migrate, run the web server and worker processes"
    )
    dev.set_defaults(command=_dev)

    worker = commands.add_parser("worker", help="run one worker process")
    worker.set_defaults(command=_worker)

    workers = commands.add_parser(
        "workers", help="run WORKER_COUNT worker processes, restarted if they die"
    )
    workers.set_defaults(command=_workers)

    submit = commands.add_parser("submit", help="validate and enqueue a job")
    submit.add_argument("type", help="job type, e.g. cleanupAuditLog")
    submit.add_argument("data", nargs="?", default="{}", help="job data as JSON (default {})")
    submit.add_argument(
        "--user-id", type=_int_in(0, MAX_BIGINT), metavar="N", help="the user the job acts for"
    )
    submit.add_argument(
        "--delay", type=_int_in(0, MAX_DELAY_MS), metavar="MS", help="milliseconds before it may run"
    )
    submit.add_argument(
        "--key",
        metavar="KEY",
        help="idempotency key: the job's id; the same key within 24 h enqueues nothing more",
    )
    submit.add_argument(
        "--wait", type=_seconds, metavar="SECONDS", help="wait for the outcome (exit 1 past it)"
    )
    submit.set_defaults(command=_submit)

    health = commands.add_parser("health", help="queue counts, workers and Redis health as JSON")
    health.set_defaults(command=_health)

    history = commands.add_parser(
        "history",
        help='audit rows, newest first, as JSON; page on with --before OLDER (printed as "older")',
    )
    history.add_argument("--type")
    history.add_argument("--status", choices=["completed", "failed"])
    history.add_argument("--user-id", type=int)
    history.add_argument("--since", type=_time, help="ISO time (UTC unless it has a zone)")
    history.add_argument("--until", type=_time, help="ISO time (UTC unless it has a zone)")
    history.add_argument("--limit", type=int, default=20, help=f"rows per page, 1-{MAX_LIMIT}")
    pages = history.add_mutually_exclusive_group()
    pages.add_argument("--before", metavar="CURSOR", help="rows older than this cursor")
    pages.add_argument("--after", metavar="CURSOR", help="rows newer than this cursor")
    history.set_defaults(command=_history)

    rollups = commands.add_parser("rollups", help="the audit trail's per-minute and per-hour rollups")
    rollup_commands = rollups.add_subparsers(required=True, metavar="ACTION")
    rebuild = rollup_commands.add_parser(
        "rebuild",
        help="recompute them from worker_jobs (after rows were imported or repaired by hand)",
        description="Without --since/--until, replaces the rollups of every hour that holds "
        "audit rows (hours whose rows were cleaned up keep theirs); with them, every hour "
        "touching the range, emptied where worker_jobs has no rows.",
    )
    rebuild.add_argument("--since", type=_time, help="ISO time (UTC unless it has a zone)")
    rebuild.add_argument("--until", type=_time, help="ISO time (UTC unless it has a zone)")
    rebuild.set_defaults(command=_rollups_rebuild)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(command=_migrate)
    _schedule_parsers(commands)

    serve_cmd = commands.add_parser("serve", help="run the web server (dashboard, metrics, health)")
    serve_cmd.set_defaults(command=_serve)
    return parser


def _schedule_parsers(commands: Any) -> None:
    schedules = commands.add_parser("schedules", help="list job schedulers and their next runs")
    schedules.add_argument("--json", action="store_true", help="print JSON instead of a table")
    schedules.set_defaults(command=_schedules)

    schedule = commands.add_parser(
        "schedule", help="create or update a schedule: a cron pattern, or --every INTERVAL"
    )
    schedule.add_argument("type", help="job type, e.g. cleanupAuditLog")
    schedule.add_argument(
        "pattern", nargs="?", help="cron pattern, 5 fields or 6 with seconds first (not with --every)"
    )
    schedule.add_argument("data", nargs="?", help="job data as JSON (default {})")
    schedule.add_argument("--every", help="run at this interval instead: ms, or 30s, 5m, 1h")
    schedule.add_argument("--key", help="scheduler key (default: the job type)")
    schedule.add_argument("--tz", help="IANA time zone of the pattern (default UTC)")
    schedule.set_defaults(command=_schedule)

    unschedule = commands.add_parser("unschedule", help="remove a schedule and its pending run")
    unschedule.add_argument("key", help="scheduler key")
    unschedule.set_defaults(command=_unschedule)


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    """Local Redis (and anvil) when none answers, migrations, then the server with workers."""
    from quickdapp.db.migrate import upgrade
    from quickdapp.devtools.anvil import dev_anvil
    from quickdapp.devtools.redis_manager import RedisManager
    from quickdapp.workers.supervisor import Supervisor

    with (
        RedisManager(settings.redis_url, data_dir=DEV_REDIS_DIR, reuse=True),
        dev_anvil(settings, DEV_ANVIL_DIR),
    ):
        upgrade(settings.database_url)
        _with_database(settings, _roll_up_existing_rows)
        logger.info("database ready at %s", redact(settings.database_url))
        return _run_server(settings, Supervisor(settings))


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from quickdapp.app.preflight import preflight
    from quickdapp.workers.process import run_worker_process

    asyncio.run(preflight(settings))
    return run_worker_process(settings)


def _workers(settings: Settings, args: argparse.Namespace) -> int:
    from quickdapp.app.preflight import preflight
    from quickdapp.workers.supervisor import run_supervisor

    asyncio.run(preflight(settings))  # once: the processes it restarts do not check again
    return run_supervisor(settings)


def _submit(settings: Settings, args: argparse.Namespace) -> int:
    data = _job_data(args.data)
    code = 0

    async def submit(app: ServerApp) -> None:
        nonlocal code
        manager = app.queue_manager
        job_id = await manager.submit_job(
            args.type, data, args.user_id, delay=args.delay, idempotency_key=args.key
        )
        print(job_id, flush=True)
        if args.wait is None:
            return
        try:
            outcome = await manager.wait_until_finished(job_id, args.wait)
        except TimeoutError:
            state = await manager.inspect.state(job_id)
            print(
                f"quickdapp: job {job_id} did not finish within {args.wait:g}s; it is {state}",
                file=sys.stderr,
            )
            code = 1
            return
        # The attempts' audit rows follow through the audit stream: `history` right after
        # `submit --wait` should show them.
        job = await manager.inspect.job(job_id)
        attempts = max(job.attempts_started, job.attempts_made) if job is not None else 1
        if not await wait_for_rows(app.sessions, job_id, attempts, AUDIT_LAG):
            print(f"quickdapp: the audit rows of {job_id} are not stored yet", file=sys.stderr)
        _print_json(outcome)

    _with_app(settings, submit)
    return code


def _health(settings: Settings, args: argparse.Namespace) -> int:
    from quickdapp.app.chain_health import chain_health

    healthy = True

    async def health(app: ServerApp) -> None:
        nonlocal healthy
        report = await app.queue_manager.get_health()
        healthy = report.redis.ok
        chain = await chain_health(app)
        _print_json({**asdict(report), "redis": {**asdict(report.redis)}, "chain": chain})

    _with_app(settings, health)
    return 0 if healthy else 1


def _history(settings: Settings, args: argparse.Namespace) -> int:
    before = Cursor.parse(args.before) if args.before else None
    after = Cursor.parse(args.after) if args.after else None

    async def history(app: ServerApp) -> None:
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
        _print_json(
            {
                "total": page.total,
                "total_exact": page.total_exact,
                "older": str(page.older) if page.older else None,
                "newer": str(page.newer) if page.newer else None,
                "items": rows,
            }
        )

    return _with_app(settings, history)


def _rollups_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    async def rebuild(sessions: async_sessionmaker[AsyncSession]) -> None:
        report = await rebuild_rollups(sessions, since=args.since, until=args.until)
        if report.first_hour is None or report.last_hour is None:
            print("no audit rows to roll up")
            return
        print(
            f"rebuilt the rollups of {report.hours} hour(s) from {report.rows} audit row(s), "
            f"{report.first_hour.isoformat()} to {report.last_hour.isoformat()}"
        )

    return _with_database(settings, rebuild)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from quickdapp.db.migrate import upgrade

    url = settings.database_url
    try:
        upgrade(url)
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        raise ServiceUnavailableError(
            f"the database at {redact(url)} cannot be migrated ({describe(exc, url)})"
        ) from None
    _with_database(settings, _roll_up_existing_rows)
    print(f"database at {redact(url)} is up to date")
    return 0


async def _roll_up_existing_rows(sessions: async_sessionmaker[AsyncSession]) -> None:
    """After migration 0003, an audit trail written before it gets its rollups once."""
    report = await ensure_rollups(sessions)
    if report is not None:
        print(f"rolled up {report.rows} existing audit row(s) into {report.hours} hour(s)")


def _schedules(settings: Settings, args: argparse.Namespace) -> int:
    async def schedules(app: ServerApp) -> None:
        jobs = await app.queue_manager.list_cron_jobs()
        if args.json:
            _print_json([asdict(job) for job in jobs])
            return
        rows = [("KEY", "TYPE", "PATTERN", "TZ", "NEXT RUN (UTC)", "DATA")]
        for job in jobs:
            next_run = job.next_run.strftime("%Y-%m-%d %H:%M:%S") if job.next_run else "-"
            data = json.dumps(job.data, separators=(",", ":"))
            schedule = _every_text(job) or job.pattern or "-"
            rows.append((job.key, job.type, schedule, job.tz or "-", next_run, data))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
            print("  ".join([*cells, row[-1]]))

    return _with_app(settings, schedules)


def _schedule(settings: Settings, args: argparse.Namespace) -> int:
    if args.every is None:
        if args.pattern is None:
            raise ValueError("give a cron pattern or --every INTERVAL")
        data = _job_data(args.data or "{}")
    else:
        # With --every, the one positional after the type is the job data.
        if args.pattern is not None and args.data is not None:
            raise ValueError("give a cron pattern or --every INTERVAL, not both")
        if args.tz is not None:
            raise ValueError("--tz applies to cron patterns, not to --every")
        parse_interval(args.every)  # refused before anything connects
        try:
            data = json.loads(args.pattern or "{}")
        except json.JSONDecodeError:
            raise ValueError(
                f"with --every, the argument after the type is the job data as JSON, not "
                f"{args.pattern!r}: give a cron pattern or --every INTERVAL, not both"
            ) from None

    async def schedule(app: ServerApp) -> None:
        manager = app.queue_manager
        if args.every is None:
            job = await manager.schedule_cron_job(args.type, args.pattern, data, args.key, args.tz)
        else:
            job = await manager.schedule_every_job(args.type, args.every, data, args.key)
        next_run = job.next_run.isoformat() if job.next_run else "never"
        schedule = _every_text(job) or f"on {job.pattern!r}"
        print(f"scheduled {job.type} as {job.key!r} {schedule}; next run {next_run}")

    return _with_app(settings, schedule)


def _every_text(job: CronJob) -> str | None:
    """'every 30s' for an `every` scheduler, None for a cron one."""
    return f"every {format_interval(job.every)}" if job.every is not None else None


def _unschedule(settings: Settings, args: argparse.Namespace) -> int:
    removed = False

    async def unschedule(app: ServerApp) -> None:
        nonlocal removed
        removed = await app.queue_manager.remove_cron_job(args.key)

    _with_app(settings, unschedule)
    if not removed:
        print(f"quickdapp: no schedule {args.key!r}", file=sys.stderr)
        return 1
    print(f"removed schedule {args.key!r} and its pending run")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    return _run_server(settings)


def _run_server(settings: Settings, supervisor: Supervisor | None = None) -> int:
    from quickdapp.app.preflight import check_database, check_redis
    from quickdapp.web.auth import admin_credentials
    from quickdapp.web.server import dashboard_url, run_server

    credentials = admin_credentials(settings)
    exit_code = 0

    async def run(app: ServerApp) -> None:
        nonlocal exit_code
        await check_database(app.engine, settings.database_url)
        await check_redis(app.redis, settings)
        print(f"dashboard: {dashboard_url(settings)}  (user {credentials.username!r})", flush=True)
        exit_code = await run_server(app, credentials, supervisor)

    _with_app(settings, run)
    return exit_code


def _time(text: str) -> datetime:
    """An ISO time from the command line; without a zone it is UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _job_data(text: str) -> Any:
    """The JSON job data given on the command line; invalid JSON is a clear error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"job data is not valid JSON: {exc}") from None
    except RecursionError:
        raise ValueError("job data is nested too deeply to read") from None


def _with_app(settings: Settings, body: Callable[[ServerApp], Awaitable[None]]) -> int:
    async def run() -> None:
        app = await ServerApp.create(settings)
        try:
            await body(app)
        finally:
            await app.close()

    asyncio.run(run())
    return 0


def _with_database(
    settings: Settings, body: Callable[[async_sessionmaker[AsyncSession]], Awaitable[None]]
) -> int:
    """Run `body` with sessions on the database alone (no Redis needed)."""

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            await body(session_factory(engine))
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":
    sys.exit(main())
