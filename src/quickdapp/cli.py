"""The `quickdapp` command: dev, worker, submit, health, history, migrate."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from quickdapp.app import ServerApp
from quickdapp.config import Settings, SettingsError, load_settings
from quickdapp.db import audit
from quickdapp.db.migrate import upgrade
from quickdapp.devtools.redis_manager import RedisManager, RedisUnavailableError
from quickdapp.jobs.types import PermanentJobError
from quickdapp.web.app import create_app
from quickdapp.web.auth import AdminCredentials, admin_credentials
from quickdapp.web.metrics import enable_multiprocess
from quickdapp.web.server import dashboard_url, serve
from quickdapp.workers.process import run_worker

logger = logging.getLogger("quickdapp")

DEV_REDIS_DIR = Path(".data/redis")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.env_file)
    except SettingsError as exc:
        print(f"quickdapp: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)-7s %(process)d %(name)s: %(message)s",
    )
    try:
        result: int = args.command(settings, args)
        return result
    except (PermanentJobError, ValueError, LookupError, RedisUnavailableError) as exc:
        print(f"quickdapp: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quickdapp", description=__doc__)
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    dev = commands.add_parser("dev", help="start Redis if needed, migrate, run a worker")
    dev.set_defaults(command=_dev)

    worker = commands.add_parser("worker", help="run one worker process")
    worker.set_defaults(command=_worker)

    submit = commands.add_parser("submit", help="validate and enqueue a job")
    submit.add_argument("type", help="job type, e.g. cleanupAuditLog")
    submit.add_argument("data", nargs="?", default="{}", help="job data as JSON (default {})")
    submit.add_argument("--user-id", type=int, help="the user the job acts for")
    submit.add_argument("--delay", type=int, help="milliseconds before it may run")
    submit.add_argument("--wait", type=float, metavar="SECONDS", help="wait for the outcome")
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

    serve_cmd = commands.add_parser("serve", help="run the web server (dashboard, metrics, health)")
    serve_cmd.set_defaults(command=_serve)
    return parser


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    with RedisManager(settings.redis_url, data_dir=DEV_REDIS_DIR, reuse=True):
        upgrade(settings.database_url)
        logger.info("database ready at %s", settings.database_url)
        return _serve(settings, args, with_worker=True)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    enable_multiprocess(settings.metrics_dir)

    async def work(app: ServerApp) -> None:
        stop = asyncio.Event()
        _on_signals(stop)
        await run_worker(app, stop)

    return _with_app(settings, work)


def _submit(settings: Settings, args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"job data is not valid JSON: {exc}") from None

    async def submit(app: ServerApp) -> None:
        job_id = await app.queue_manager.submit_job(args.type, data, args.user_id, delay=args.delay)
        print(job_id)
        if args.wait is not None:
            _print_json(await app.queue_manager.wait_until_finished(job_id, args.wait))

    return _with_app(settings, submit)


def _health(settings: Settings, args: argparse.Namespace) -> int:
    healthy = True

    async def health(app: ServerApp) -> None:
        nonlocal healthy
        report = await app.queue_manager.get_health()
        healthy = report.redis.ok
        _print_json({**asdict(report), "redis": {**asdict(report.redis)}})

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
    upgrade(settings.database_url)
    print(f"database at {settings.database_url} is up to date")
    return 0


def _serve(settings: Settings, args: argparse.Namespace, *, with_worker: bool = False) -> int:
    """The web server; with `with_worker` (quickdapp dev) a worker runs on the same event loop."""
    try:
        credentials: AdminCredentials = admin_credentials(settings)
    except SettingsError as exc:
        print(f"quickdapp: {exc}", file=sys.stderr)
        return 2
    if with_worker:
        enable_multiprocess(settings.metrics_dir)

    async def run(app: ServerApp) -> None:
        stop = asyncio.Event()
        _on_signals(stop)
        web = create_app(settings, app, credentials=credentials)
        parts = [serve(web, settings, stop)]
        if with_worker:
            parts.append(run_worker(app, stop))

        async def until_stopped(part: Awaitable[None]) -> None:
            try:
                await part
            finally:
                stop.set()  # one part ending (or failing) stops the others

        print(f"dashboard: {dashboard_url(settings)}  (user {credentials.username!r})", flush=True)
        await asyncio.gather(*(until_stopped(part) for part in parts))

    return _with_app(settings, run)


def _with_app(settings: Settings, body: Callable[[ServerApp], Awaitable[None]]) -> int:
    async def run() -> None:
        app = await ServerApp.create(settings)
        try:
            await body(app)
        finally:
            await app.close()

    asyncio.run(run())
    return 0


def _on_signals(stop: asyncio.Event) -> None:
    """First SIGINT/SIGTERM: graceful stop. A second one: stop now."""
    loop = asyncio.get_running_loop()

    def first(signum: int) -> None:
        logger.info(
            "%s received: finishing active jobs (again to stop now)", signal.Signals(signum).name
        )
        stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, second)

    def second() -> None:
        raise SystemExit(130)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, first, sig)


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
