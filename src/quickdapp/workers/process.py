"""One worker process: a bullmq Worker on `jobs` running the unified processor.

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
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any
from uuid import uuid4

from bullmq import Worker

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.keys import QUEUE_NAME
from quickdapp.logs import configure_logging
from quickdapp.metrics import enable_multiprocess
from quickdapp.redaction import redact
from quickdapp.signals import on_stop_signals
from quickdapp.workers.heartbeat import Heartbeat
from quickdapp.workers.hooks import Hooks, standard_hooks
from quickdapp.workers.outage import OutageLog, is_connection_error
from quickdapp.workers.processor import JobProcessor
from quickdapp.workers.stalled import record_stalled_attempt, record_stalled_failure

logger = logging.getLogger(__name__)

READY = b"R"  # written on the supervisor's ready pipe once the Worker runs

# bullmq waits this long before fetching again after a connection error (its default, 15 s,
# would leave the queue idle that long after Redis comes back).
RECONNECT_DELAY_MS = 1_000
IDLE_CLOSE_GRACE = 2.0  # seconds bullmq gets to end its fetch once no job is left (it takes ms)


def create_worker(
    app: ServerApp,
    *,
    name: str | None = None,
    outage: OutageLog | None = None,
    background: _Background | None = None,
) -> Worker:
    """A Worker with the queue settings of `app`, not yet running (see `start_worker`)."""
    settings = app.settings
    options: dict[str, Any] = {
        "connection": settings.redis_url,
        "concurrency": settings.worker_queue_concurrency,
        "stalledInterval": settings.worker_queue_stalled_interval,
        "lockDuration": settings.worker_queue_lock_duration,
        "maxStalledCount": settings.worker_queue_max_stalled_count,
        "runRetryDelay": RECONNECT_DELAY_MS,
        "autorun": False,
    }
    # A unique name tells workers apart in CLIENT LIST (the dashboard's live workers).
    options["name"] = name or default_worker_name()
    hooks = standard_hooks(app)
    worker = Worker(QUEUE_NAME, JobProcessor(app, app.registry, hooks), options)
    errors = _ErrorLog(outage or OutageLog(redact(settings.redis_url)))
    tasks = background or _Background()
    worker.on("error", errors)
    worker.on("failed", _log_failure)
    worker.on("failed", lambda job, *_: _audit_stalled_failure(app, hooks, job, tasks))
    worker.on("stalled", lambda job_id, *_: tasks.spawn(record_stalled_attempt(app, hooks, job_id)))
    return worker


def default_worker_name() -> str:
    """host:pid:random, unique per Worker even when a process runs several."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:6]}"


async def start_worker(worker: Worker) -> asyncio.Task[None]:
    """Start `worker`'s loop and return once it runs, registered under its name in Redis.

    Reading the server's version first is the one step that makes delays precise: bullmq rounds
    blocking waits up to whole seconds until the blocking connection knows it. Returning only
    once the loop runs keeps a quick close() from racing the loop's own start-up.
    """
    await worker.blockingRedisConnection.getRedisVersion()
    task = asyncio.create_task(worker.run(), name=f"worker {worker.id}")
    while not worker.running and not task.done():
        await asyncio.sleep(0.005)
    if task.done():
        task.result()  # a worker that could not start raises here
    return task


async def run_worker(
    app: ServerApp,
    stop: asyncio.Event,
    *,
    name: str | None = None,
    shutdown_timeout: float | None = None,
    ready: asyncio.Event | None = None,
) -> bool:
    """Process jobs until `stop` is set, then close gracefully: active jobs finish, none start.

    `ready` is set once the worker runs and is registered in Redis. Jobs still running after
    `shutdown_timeout` seconds (default WORKER_SHUTDOWN_TIMEOUT) are abandoned; their locks
    lapse and the stalled check gives them to another worker. Returns True when the close was
    clean.
    """
    settings = app.settings
    outage = OutageLog(redact(settings.redis_url))
    background = _Background()
    worker = create_worker(app, name=name, outage=outage, background=background)
    heartbeat = Heartbeat(
        app.redis,
        concurrency=settings.worker_queue_concurrency,
        active_job_ids=lambda: [str(job.id) for job, _token in list(worker.jobs)],
        outage=outage,
    )
    loop_task = await start_worker(worker)
    if ready is not None:
        ready.set()
    # Beats on while active jobs finish after `stop`: health shows the process until it is gone.
    closed = asyncio.Event()
    beating = asyncio.create_task(heartbeat.run(closed), name="heartbeat")
    logger.info(
        "worker %s processing %r (concurrency %d)",
        worker.id,
        QUEUE_NAME,
        settings.worker_queue_concurrency,
    )
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({loop_task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    timeout = settings.worker_shutdown_timeout if shutdown_timeout is None else shutdown_timeout
    logger.info(
        "worker %s closing: waiting up to %.0fs for %d active jobs", worker.id, timeout, len(worker.jobs)
    )
    abandoned = await _close(worker, timeout)
    if abandoned:
        logger.warning(
            "worker %s: %d jobs still running after %.0fs, ended them (they run again once "
            "their locks lapse): %s",
            worker.id,
            len(abandoned),
            timeout,
            ", ".join(abandoned),
        )
    await asyncio.wait({loop_task})
    await background.drain()  # audit rows of stalled jobs
    closed.set()
    await beating
    await heartbeat.remove()
    logger.info("worker %s closed", worker.id)
    return not abandoned


async def _close(worker: Worker, timeout: float) -> list[str]:
    """Close `worker`: active jobs get `timeout` seconds; returns the ids of those it then ended.

    With no job left, bullmq's close only has to cancel its blocking fetch; should that take
    longer than IDLE_CLOSE_GRACE (seen once under load: 30 s), it is cut short, losing no job.
    """
    loop = asyncio.get_running_loop()
    closing = asyncio.create_task(worker.close())
    deadline = loop.time() + timeout
    idle_since: float | None = None
    while not closing.done():
        now = loop.time()
        idle_since = None if worker.jobs else (idle_since or now)
        if now >= deadline or (idle_since is not None and now - idle_since >= IDLE_CLOSE_GRACE):
            break
        await asyncio.wait({closing}, timeout=0.1)
    if closing.done():
        return []
    abandoned = sorted(str(job.id) for job, _token in list(worker.jobs))
    if not abandoned:
        logger.info("worker %s: close still waiting with no active job; cutting it short", worker.id)
    # What close(force=True) does, without starting a second teardown.
    worker.forceClosing = True
    worker.cancelProcessing()
    await asyncio.wait({closing}, timeout=IDLE_CLOSE_GRACE)
    return abandoned


def run_worker_process(settings: Settings, *, on_ready: Callable[[], None] | None = None) -> int:
    """Run one worker process in the foreground until SIGTERM or SIGINT; 0 after a clean close.

    `on_ready` is called once the Worker runs (the supervisor's ready pipe)."""

    enable_multiprocess(settings.metrics_dir)

    async def work() -> bool:
        app = await ServerApp.create(settings)
        ready = asyncio.Event()
        tell = asyncio.create_task(_when_set(ready, on_ready)) if on_ready else None
        try:
            stop = asyncio.Event()
            on_stop_signals(stop)
            return await run_worker(app, stop, ready=ready)
        finally:
            if tell is not None:
                tell.cancel()
            await app.close()

    return 0 if asyncio.run(work()) else 1


async def _when_set(event: asyncio.Event, call: Callable[[], None]) -> None:
    await event.wait()
    call()


def main(argv: list[str] | None = None) -> int:
    """Entry of a worker process started by the supervisor: settings arrive as JSON on stdin,
    and `--ready-fd N` names the pipe on which to say that the Worker runs."""
    parser = argparse.ArgumentParser(prog="python -m quickdapp.workers")
    parser.add_argument("--ready-fd", type=int, help="write one byte here once the Worker runs")
    args = parser.parse_args(argv)
    settings = Settings.model_validate_json(sys.stdin.read())
    sys.stdin.close()
    configure_logging(settings.log_level, secrets=settings.secret_values)
    on_ready = None if args.ready_fd is None else partial(_say_ready, args.ready_fd)
    return run_worker_process(settings, on_ready=on_ready)


def _say_ready(fd: int) -> None:
    """One byte on the supervisor's pipe, then the pipe is closed."""
    try:
        os.write(fd, READY)
    except OSError:
        pass  # the supervisor is gone: nobody to tell
    finally:
        os.close(fd)


def _log_failure(job: Any, error: BaseException, *_: Any) -> None:
    attempts = job.opts.get("attempts", 1)
    logger.warning(
        "%s job %s failed (attempt %d of %d): %s",
        job.name,
        job.id,
        job.attemptsMade,
        attempts,
        error,
    )


def _audit_stalled_failure(app: ServerApp, hooks: Hooks, job: Any, tasks: _Background) -> None:
    if getattr(job, "deferredFailure", None):
        tasks.spawn(record_stalled_failure(app, hooks, job))


class _Background:
    """Tasks started from bullmq's (synchronous) event callbacks, kept referenced until done."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks))


class _ErrorLog:
    """Logs worker errors, each distinct message once per minute: an outage is one line, not
    thousands. Connection errors go to the OutageLog, which says once that Redis is away."""

    def __init__(self, outage: OutageLog, every: float = 60.0) -> None:
        self._outage = outage
        self._every = every
        self._last: dict[str, float] = {}

    def __call__(self, error: BaseException, *_: Any) -> None:
        if is_connection_error(error):
            self._outage.lost(error)
            return
        message = f"{type(error).__name__}: {error}"
        now = time.monotonic()
        if now - self._last.get(message, -self._every) >= self._every:
            self._last[message] = now
            logger.error("worker error: %s", message)
