"""The `quickdapp` command line: its commands, their arguments and the types that check them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NoReturn, TypeAlias

from quickdapp.audit.history import MAX_LIMIT
from quickdapp.cli import audit_commands, queue_commands, run
from quickdapp.limits import MAX_BIGINT, MAX_DELAY_MS, MAX_WAIT_SECONDS, check_seconds, shown

DESCRIPTION = (
    "The `quickdapp` command: dev, worker, submit, health, history, rollups, migrate, schedules."
)


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


_Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each sets `command`, the function that runs it."""
    parser = _Parser(prog="quickdapp", description=DESCRIPTION)
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    # In the order `quickdapp --help` lists them.
    _add_process_commands(commands)
    _add_submit_and_health(commands)
    _add_history(commands)
    _add_rollups_and_migrate(commands)
    _add_schedule_commands(commands)
    serve_cmd = commands.add_parser("serve", help="run the web server (dashboard, metrics, health)")
    serve_cmd.set_defaults(command=run.serve)
    return parser


def _add_process_commands(commands: _Commands) -> None:
    """dev, worker, workers: the commands that run the system in the foreground."""
    dev = commands.add_parser(
        "dev", help="start Redis (and anvil) if needed, migrate, run the web server and worker processes"
    )
    dev.set_defaults(command=run.dev)

    worker = commands.add_parser("worker", help="run one worker process")
    worker.set_defaults(command=run.worker)

    workers = commands.add_parser(
        "workers", help="run WORKER_COUNT worker processes, restarted if they die"
    )
    workers.set_defaults(command=run.workers)


def _add_submit_and_health(commands: _Commands) -> None:
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
    submit.set_defaults(command=queue_commands.submit)

    health = commands.add_parser("health", help="queue counts, workers and Redis health as JSON")
    health.set_defaults(command=queue_commands.health)


def _add_history(commands: _Commands) -> None:
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
    history.set_defaults(command=audit_commands.history)


def _add_rollups_and_migrate(commands: _Commands) -> None:
    rollups = commands.add_parser("rollups", help="the audit trail's per-minute and per-hour rollups")
    rollup_actions = rollups.add_subparsers(required=True, metavar="ACTION")
    rebuild = rollup_actions.add_parser(
        "rebuild",
        help="recompute them from worker_jobs (after rows were imported or repaired by hand)",
        description="Without --since/--until, replaces the rollups of every hour that holds "
        "audit rows (hours whose rows were cleaned up keep theirs); with them, every hour "
        "touching the range, emptied where worker_jobs has no rows.",
    )
    rebuild.add_argument("--since", type=_time, help="ISO time (UTC unless it has a zone)")
    rebuild.add_argument("--until", type=_time, help="ISO time (UTC unless it has a zone)")
    rebuild.set_defaults(command=audit_commands.rollups_rebuild)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(command=audit_commands.migrate)


def _add_schedule_commands(commands: _Commands) -> None:
    schedules = commands.add_parser("schedules", help="list job schedulers and their next runs")
    schedules.add_argument("--json", action="store_true", help="print JSON instead of a table")
    schedules.set_defaults(command=queue_commands.schedules)

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
    schedule.set_defaults(command=queue_commands.schedule)

    unschedule = commands.add_parser("unschedule", help="remove a schedule and its pending run")
    unschedule.add_argument("key", help="scheduler key")
    unschedule.set_defaults(command=queue_commands.unschedule)


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


# argparse names a type's function in its errors ("invalid _time value"): keep the name.
def _time(text: str) -> datetime:
    """An ISO time from the command line; without a zone it is UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
