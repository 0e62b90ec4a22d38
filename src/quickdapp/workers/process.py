"""One worker process: a bullmq Worker on `jobs` running the unified processor."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any
from uuid import uuid4

from bullmq import Worker

from quickdapp.app import ServerApp
from quickdapp.queue.processor import JobProcessor
from quickdapp.queue.queues import QUEUE_NAME

logger = logging.getLogger(__name__)


def create_worker(app: ServerApp, *, name: str | None = None) -> Worker:
    """A Worker with the queue settings of `app`, not yet running (see `start_worker`)."""
    settings = app.settings
    options: dict[str, Any] = {
        "connection": settings.redis_url,
        "concurrency": settings.worker_queue_concurrency,
        "stalledInterval": settings.worker_queue_stalled_interval,
        "lockDuration": settings.worker_queue_lock_duration,
        "maxStalledCount": settings.worker_queue_max_stalled_count,
        "autorun": False,
    }
    # A unique name tells workers apart in CLIENT LIST (the dashboard's live workers).
    options["name"] = name or default_worker_name()
    worker = Worker(QUEUE_NAME, JobProcessor(app, app.registry), options)
    errors = _ErrorLog()
    worker.on("error", errors)
    worker.on("failed", _log_failure)
    return worker


def default_worker_name() -> str:
    """host:pid:random, unique per Worker even when a process runs several."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:6]}"


async def start_worker(worker: Worker) -> asyncio.Task[None]:
    """Start `worker`'s loop, after the one step that makes delays precise.

    bullmq rounds blocking waits up to whole seconds until the blocking connection knows the
    server's version; reading it before `run()` lets delayed jobs start within milliseconds.
    """
    await worker.blockingRedisConnection.getRedisVersion()
    return asyncio.create_task(worker.run(), name=f"worker {worker.id}")


async def run_worker(app: ServerApp, stop: asyncio.Event, *, name: str | None = None) -> None:
    """Process jobs until `stop` is set, then close gracefully: active jobs finish, none start."""
    worker = create_worker(app, name=name)
    loop_task = await start_worker(worker)
    logger.info(
        "worker %s processing %r (concurrency %d)",
        worker.id,
        QUEUE_NAME,
        app.settings.worker_queue_concurrency,
    )
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({loop_task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    logger.info("worker %s closing: waiting for %d active jobs", worker.id, len(worker.jobs))
    await worker.close()
    await loop_task
    logger.info("worker %s closed", worker.id)


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


class _ErrorLog:
    """Logs worker errors, each distinct message once per minute: an outage is one line, not
    thousands."""

    def __init__(self, every: float = 60.0) -> None:
        self._every = every
        self._last: dict[str, float] = {}

    def __call__(self, error: BaseException, *_: Any) -> None:
        message = f"{type(error).__name__}: {error}"
        now = time.monotonic()
        if now - self._last.get(message, -self._every) >= self._every:
            self._last[message] = now
            logger.error("worker error: %s", message)
