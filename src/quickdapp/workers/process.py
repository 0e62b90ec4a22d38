"""One worker process: the engine on `jobs`, running each attempt through the processor.

`quickdapp worker` runs one in the foreground; the supervisor starts WORKER_COUNT of them with
`python -m quickdapp.workers`, handing each the settings as JSON on its stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable
from functools import partial
from uuid import uuid4

import uvloop

from quickdapp.app.server_app import ServerApp
from quickdapp.broker.job import StalledAttempt
from quickdapp.config import Settings
from quickdapp.keys import PREFIX, QUEUE_NAME
from quickdapp.logs import configure_logging
from quickdapp.metrics import enable_multiprocess, flush_job_metrics
from quickdapp.queue.job_options import KEEP_COMPLETED, KEEP_FAILED
from quickdapp.redaction import redact
from quickdapp.signals import on_stop_signals
from quickdapp.workers.engine import Engine
from quickdapp.workers.heartbeat import Heartbeat
from quickdapp.workers.hooks import Hooks, standard_hooks
from quickdapp.workers.outage import OutageLog
from quickdapp.workers.processor import JobProcessor
from quickdapp.workers.stalled import report_stalled_attempts

logger = logging.getLogger(__name__)

READY = b"R"  # written on the supervisor's ready pipe once the engine runs

HooksFactory = Callable[[ServerApp], Hooks]
"""Builds the hooks of a worker process's engine (standard_hooks unless measuring them)."""


def default_worker_name() -> str:
    """host:pid:random, unique per worker even when a process runs several."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:6]}"


def create_engine(
    app: ServerApp,
    *,
    name: str | None = None,
    outage: OutageLog | None = None,
    hooks: HooksFactory = standard_hooks,
) -> Engine:
    """The engine of `app`'s settings with the standard hooks (or `hooks`), not yet started."""
    settings = app.settings
    attempt_hooks = hooks(app)
    processor = JobProcessor(app, app.registry, attempt_hooks)
    outage = outage or OutageLog(redact(settings.redis_url))

    async def lost(error: BaseException) -> None:
        outage.lost(error)

    async def restored() -> None:
        outage.restored()

    async def stalled(captured: list[StalledAttempt]) -> None:
        await report_stalled_attempts(attempt_hooks, captured)

    engine = Engine(
        redis_url=settings.redis_url,
        queue=QUEUE_NAME,
        prefix=PREFIX,
        name=name or default_worker_name(),
        concurrency=settings.worker_queue_concurrency,
        lock_duration_ms=settings.worker_queue_lock_duration,
        stalled_interval_ms=settings.worker_queue_stalled_interval,
        max_stalled_count=settings.worker_queue_max_stalled_count,
        record_stalled_in=attempt_hooks.stalled_stream,
        process=processor,
        finish_extras=processor.finish_extras,
        on_finished=processor.on_finished,
        on_stalled=stalled,
        on_lost=lost,
        on_restored=restored,
        remove_on_complete=KEEP_COMPLETED,
        remove_on_fail=KEEP_FAILED,
    )
    processor.engine = engine
    return engine


async def run_worker(
    app: ServerApp,
    stop: asyncio.Event,
    *,
    name: str | None = None,
    shutdown_timeout: float | None = None,
    ready: asyncio.Event | None = None,
    audit_writer: bool = True,
    hooks: HooksFactory = standard_hooks,
) -> bool:
    """Process jobs until `stop` is set, then close gracefully: active jobs finish, none start.

    `ready` is set once the worker runs and is registered in Redis. Jobs still running after
    `shutdown_timeout` seconds (default WORKER_SHUTDOWN_TIMEOUT) are abandoned; their locks
    lapse and the stalled check gives them to another worker. With `audit_writer` (a worker on
    its own; the supervisor runs one for all its workers instead) this process also moves the
    audit stream into the database, until its last attempts are stored. Returns True when the
    close was clean.
    """
    settings = app.settings
    writer_stop = asyncio.Event()
    writing = (
        asyncio.create_task(run_audit_writer(app, writer_stop), name="audit writer")
        if audit_writer
        else None
    )
    outage = OutageLog(redact(settings.redis_url))
    engine = create_engine(app, name=name, outage=outage, hooks=hooks)
    heartbeat = Heartbeat(
        app.redis,
        concurrency=settings.worker_queue_concurrency,
        active_job_ids=engine.active_job_ids,
        outage=outage,
    )
    await _start_engine(engine, ready, settings.worker_queue_concurrency)
    # Beats on while active jobs finish after `stop`: health shows the process until it is gone.
    closed = asyncio.Event()
    beating = asyncio.create_task(heartbeat.run(closed), name="heartbeat")
    await stop.wait()
    timeout = settings.worker_shutdown_timeout if shutdown_timeout is None else shutdown_timeout
    abandoned = await _close_engine(engine, timeout)
    flush_job_metrics()  # what the last second's attempts counted
    if writing is not None:
        writer_stop.set()
        await writing
    closed.set()
    await beating
    await heartbeat.remove()
    logger.info("worker %s closed", engine.name)
    return not abandoned


async def _start_engine(engine: Engine, ready: asyncio.Event | None, concurrency: int) -> None:
    """Start `engine`, then say so: on `ready` (when given) and in the log."""
    await engine.start()
    if ready is not None:
        ready.set()
    logger.info("worker %s processing %r (concurrency %d)", engine.name, QUEUE_NAME, concurrency)


async def _close_engine(engine: Engine, timeout: float) -> list[str]:
    """Close `engine`, its active jobs given `timeout` seconds to finish; the ids of the jobs
    still running then, which were abandoned (they run again once their locks lapse)."""
    logger.info(
        "worker %s closing: waiting up to %.0fs for %d active jobs",
        engine.name,
        timeout,
        len(engine.active_job_ids()),
    )
    abandoned = await engine.close(timeout)
    if abandoned:
        logger.warning(
            "worker %s: %d jobs still running after %.0fs, ended them (they run again once "
            "their locks lapse): %s",
            engine.name,
            len(abandoned),
            timeout,
            ", ".join(abandoned),
        )
    return abandoned


async def run_audit_writer(app: ServerApp, stop: asyncio.Event) -> None:
    """Move the audit stream into the database until `stop` (see audit/writer.py)."""
    from quickdapp.audit.writer import AuditWriter  # SQLAlchemy: only where rows are written
    from quickdapp.db.engine import create_engine, session_factory

    consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:6]}"
    # Its own engine, without the pre-ping (a third of a small batch's CPU): a batch that
    # fails on a connection the database dropped is retried whole on a new one.
    engine = create_engine(app.settings.database_url, pre_ping=False)
    try:
        await AuditWriter(app.settings.redis_url, session_factory(engine), consumer=consumer).run(stop)
    finally:
        await engine.dispose()


def run_worker_process(
    settings: Settings,
    *,
    audit_writer: bool = True,
    on_ready: Callable[[], None] | None = None,
    hooks: HooksFactory = standard_hooks,
) -> int:
    """Run one worker process in the foreground until SIGTERM or SIGINT; 0 after a clean close.

    A worker started by the supervisor runs no audit writer (`audit_writer=False`): the
    supervisor runs one for all of them, and the worker never loads SQLAlchemy. `on_ready` is
    called once the engine runs (the supervisor's ready pipe).
    """

    enable_multiprocess(settings.metrics_dir)

    async def work() -> bool:
        app = await ServerApp.create(settings)
        ready = asyncio.Event()
        tell = asyncio.create_task(_when_set(ready, on_ready)) if on_ready else None
        try:
            stop = asyncio.Event()
            on_stop_signals(stop)
            return await run_worker(app, stop, ready=ready, audit_writer=audit_writer, hooks=hooks)
        finally:
            if tell is not None:
                tell.cancel()
            await app.close()

    return 0 if uvloop.run(work()) else 1


async def _when_set(event: asyncio.Event, call: Callable[[], None]) -> None:
    await event.wait()
    call()


def main(argv: list[str] | None = None, *, hooks: HooksFactory = standard_hooks) -> int:
    """Entry of a worker process started by the supervisor: settings arrive as JSON on stdin,
    and `--ready-fd N` names the pipe on which to say that the engine runs. `hooks` builds the
    engine's hooks (bench/ leaves the audit out to measure it)."""
    parser = argparse.ArgumentParser(prog="python -m quickdapp.workers")
    parser.add_argument("--ready-fd", type=int, help="write one byte here once the engine runs")
    args = parser.parse_args(argv)
    settings = Settings.model_validate_json(sys.stdin.read())
    sys.stdin.close()
    configure_logging(settings.log_level, secrets=settings.secret_values)
    on_ready = None if args.ready_fd is None else partial(_say_ready, args.ready_fd)
    return run_worker_process(settings, audit_writer=False, on_ready=on_ready, hooks=hooks)


def _say_ready(fd: int) -> None:
    """One byte on the supervisor's pipe, then the pipe is closed."""
    try:
        os.write(fd, READY)
    except OSError:
        pass  # the supervisor is gone: nobody to tell
    finally:
        os.close(fd)
