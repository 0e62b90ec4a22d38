"""The `quickdapp` command: dev, worker, submit, health, history, migrate, schedules."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import SQLAlchemyError

from quickdapp.app.chain_health import chain_health
from quickdapp.app.preflight import check_database, check_redis, preflight
from quickdapp.app.server_app import ServerApp
from quickdapp.app.startup import on_start
from quickdapp.audit import store as audit
from quickdapp.config import Settings, load_settings
from quickdapp.db.migrate import upgrade
from quickdapp.errors import (
    PermanentJobError,
    ServiceUnavailableError,
    SettingsError,
    StartupRefusedError,
)
from quickdapp.limits import MAX_BIGINT, MAX_DELAY_MS, MAX_WAIT_SECONDS, check_seconds, shown
from quickdapp.logs import configure_logging
from quickdapp.redaction import describe, redact
from quickdapp.signals import exit_now, on_stop_signals
from quickdapp.web.app import create_app
from quickdapp.web.auth import AdminCredentials, admin_credentials
from quickdapp.web.server import dashboard_url, run_web_server
from quickdapp.workers.process import run_worker_process
from quickdapp.workers.supervisor import Supervisor, run_supervisor

logger = logging.getLogger("quickdapp")

DEV_REDIS_DIR = Path(".data/redis")
DEV_ANVIL_DIR = Path(".data/anvil")


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

    history = commands.add_parser("history", help="recent audit rows, newest first, as JSON")
    history.add_argument("--type")
    history.add_argument("--status", choices=["completed", "failed"])
    history.add_argument("--user-id", type=int)
    history.add_argument("--limit", type=int, default=20)
    history.set_defaults(command=_history)

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

    schedule = commands.add_parser("schedule", help="create or update a cron schedule")
    schedule.add_argument("type", help="job type, e.g. cleanupAuditLog")
    schedule.add_argument("pattern", help="cron pattern, 5 fields or 6 with seconds first")
    schedule.add_argument("data", nargs="?", default="{}", help="job data as JSON (default {})")
    schedule.add_argument("--key", help="scheduler key (default: the job type)")
    schedule.add_argument("--tz", help="IANA time zone of the pattern (default UTC)")
    schedule.set_defaults(command=_schedule)

    unschedule = commands.add_parser("unschedule", help="remove a schedule and its pending run")
    unschedule.add_argument("key", help="scheduler key")
    unschedule.set_defaults(command=_unschedule)


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    """Local Redis (and anvil) when none answers, migrations, then the server with workers."""
    from quickdapp.devtools.anvil import dev_anvil
    from quickdapp.devtools.redis_manager import RedisManager

    with (
        RedisManager(settings.redis_url, data_dir=DEV_REDIS_DIR, reuse=True),
        dev_anvil(settings, DEV_ANVIL_DIR),
    ):
        upgrade(settings.database_url)
        logger.info("database ready at %s", redact(settings.database_url))
        return _run_server(settings, Supervisor(settings))


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(preflight(settings))
    return run_worker_process(settings)


def _workers(settings: Settings, args: argparse.Namespace) -> int:
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
        _print_json(outcome)

    _with_app(settings, submit)
    return code


def _health(settings: Settings, args: argparse.Namespace) -> int:
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
    async def history(app: ServerApp) -> None:
        page = await audit.get_job_history(
            app.sessions, type=args.type, status=args.status, user_id=args.user_id, limit=args.limit
        )
        rows = [
            {column: getattr(row, column) for column in row.__table__.columns.keys()}
            for row in page.items
        ]
        _print_json({"total": page.total, "items": rows})

    return _with_app(settings, history)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    url = settings.database_url
    try:
        upgrade(url)
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        raise ServiceUnavailableError(
            f"the database at {redact(url)} cannot be migrated ({describe(exc, url)})"
        ) from None
    print(f"database at {redact(url)} is up to date")
    return 0


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
            rows.append((job.key, job.type, job.pattern or "-", job.tz or "-", next_run, data))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
            print("  ".join([*cells, row[-1]]))

    return _with_app(settings, schedules)


def _schedule(settings: Settings, args: argparse.Namespace) -> int:
    data = _job_data(args.data)

    async def schedule(app: ServerApp) -> None:
        job = await app.queue_manager.schedule_cron_job(args.type, args.pattern, data, args.key, args.tz)
        next_run = job.next_run.isoformat() if job.next_run else "never"
        print(f"scheduled {job.type} as {job.key!r} on {job.pattern!r}; next run {next_run}")

    return _with_app(settings, schedule)


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
    """The web server, which never runs a job; with a `supervisor` (quickdapp dev), its worker
    processes run beside it. Either way the start applies the default schedules."""
    credentials: AdminCredentials = admin_credentials(settings)
    exit_code = 0

    async def run(app: ServerApp) -> None:
        nonlocal exit_code
        await check_database(app.engine, settings.database_url)
        await check_redis(app.redis, settings)
        await on_start(app)
        stop = asyncio.Event()
        on_stop_signals(stop, what="stopping", now=supervisor.kill_all if supervisor else exit_now)
        parts: list[Awaitable[Any]] = [
            run_web_server(create_app(settings, app, credentials=credentials), settings, stop)
        ]
        if supervisor is not None:
            parts.append(supervisor.run(stop))

        async def until_stopped(part: Awaitable[Any]) -> Any:
            try:
                return await part
            finally:
                stop.set()  # one part ending (or failing) stops the others

        print(f"dashboard: {dashboard_url(settings)}  (user {credentials.username!r})", flush=True)
        results = await asyncio.gather(*(until_stopped(part) for part in parts))
        if supervisor is not None:
            exit_code = results[1]

    _with_app(settings, run)
    return exit_code


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
