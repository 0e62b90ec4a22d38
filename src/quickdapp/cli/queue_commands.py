"""The queue's commands: submit, health, and the job schedulers (schedules, schedule,
unschedule)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from quickdapp.app.server_app import ServerApp
from quickdapp.audit.history import wait_for_rows
from quickdapp.cli.connections import with_app
from quickdapp.cli.output import print_json
from quickdapp.config import Settings
from quickdapp.json_text import compact_or_text
from quickdapp.queue.intervals import format_interval, parse_interval
from quickdapp.queue.manager import CronJob

AUDIT_LAG = 5.0  # seconds `submit --wait` waits for the audit rows after the job ends


def submit(settings: Settings, args: argparse.Namespace) -> int:
    """`quickdapp submit`: enqueue a job and print its id; with --wait, its outcome too."""
    data = _job_data(args.data)
    code = 0

    async def submit_job(app: ServerApp) -> None:
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
        print_json(outcome)

    with_app(settings, submit_job)
    return code


def health(settings: Settings, args: argparse.Namespace) -> int:
    """`quickdapp health`: queue counts, workers, Redis and the chain as JSON; 1 without Redis."""
    from quickdapp.app.chain_health import chain_health

    healthy = True

    async def report_health(app: ServerApp) -> None:
        nonlocal healthy
        report = await app.queue_manager.get_health()
        healthy = report.redis.ok
        chain = await chain_health(app)
        print_json({**asdict(report), "redis": {**asdict(report.redis)}, "chain": chain})

    with_app(settings, report_health)
    return 0 if healthy else 1


def schedules(settings: Settings, args: argparse.Namespace) -> int:
    """`quickdapp schedules`: the job schedulers as a table, or as JSON with --json."""

    async def list_schedules(app: ServerApp) -> None:
        jobs = await app.queue_manager.list_cron_jobs()
        if args.json:
            print_json([asdict(job) for job in jobs])
            return
        rows = [("KEY", "TYPE", "PATTERN", "TZ", "NEXT RUN (UTC)", "DATA")]
        for job in jobs:
            next_run = job.next_run.strftime("%Y-%m-%d %H:%M:%S") if job.next_run else "-"
            data = compact_or_text(job.data)
            schedule = _every_text(job) or job.pattern or "-"
            rows.append((job.key, job.type, schedule, job.tz or "-", next_run, data))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
            print("  ".join([*cells, row[-1]]))

    return with_app(settings, list_schedules)


def schedule(settings: Settings, args: argparse.Namespace) -> int:
    """`quickdapp schedule`: create or update a job scheduler, on a cron pattern or --every."""
    data = _schedule_data(args)

    async def upsert_schedule(app: ServerApp) -> None:
        manager = app.queue_manager
        if args.every is None:
            job = await manager.schedule_cron_job(args.type, args.pattern, data, args.key, args.tz)
        else:
            job = await manager.schedule_every_job(args.type, args.every, data, args.key)
        next_run = job.next_run.isoformat() if job.next_run else "never"
        schedule = _every_text(job) or f"on {job.pattern!r}"
        print(f"scheduled {job.type} as {job.key!r} {schedule}; next run {next_run}")

    return with_app(settings, upsert_schedule)


def _schedule_data(args: argparse.Namespace) -> Any:
    """The job data of `schedule`, its arguments checked before anything connects."""
    if args.every is None:
        if args.pattern is None:
            raise ValueError("give a cron pattern or --every INTERVAL")
        return _job_data(args.data or "{}")
    # With --every, the one positional after the type is the job data.
    if args.pattern is not None and args.data is not None:
        raise ValueError("give a cron pattern or --every INTERVAL, not both")
    if args.tz is not None:
        raise ValueError("--tz applies to cron patterns, not to --every")
    parse_interval(args.every)
    try:
        return json.loads(args.pattern or "{}")
    except json.JSONDecodeError:
        raise ValueError(
            f"with --every, the argument after the type is the job data as JSON, not "
            f"{args.pattern!r}: give a cron pattern or --every INTERVAL, not both"
        ) from None


def _every_text(job: CronJob) -> str | None:
    """'every 30s' for an `every` scheduler, None for a cron one."""
    return f"every {format_interval(job.every)}" if job.every is not None else None


def unschedule(settings: Settings, args: argparse.Namespace) -> int:
    """`quickdapp unschedule`: remove a job scheduler and its pending run; 1 when there is none."""
    removed = False

    async def remove_schedule(app: ServerApp) -> None:
        nonlocal removed
        removed = await app.queue_manager.remove_cron_job(args.key)

    with_app(settings, remove_schedule)
    if not removed:
        print(f"quickdapp: no schedule {args.key!r}", file=sys.stderr)
        return 1
    print(f"removed schedule {args.key!r} and its pending run")
    return 0


def _job_data(text: str) -> Any:
    """The JSON job data given on the command line; invalid JSON is a clear error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"job data is not valid JSON: {exc}") from None
    except RecursionError:
        raise ValueError("job data is nested too deeply to read") from None
