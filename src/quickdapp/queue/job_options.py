"""The options of the queue's jobs, and the bullmq Queue object that adds them."""

from __future__ import annotations

from typing import Any

from bullmq import Queue

from quickdapp.config import Settings
from quickdapp.keys import QUEUE_NAME

BACKOFF_FIRST_DELAY_MS = 2_000
KEEP_COMPLETED = {"age": 3_600, "count": 100}  # seconds, jobs
KEEP_FAILED = {"age": 24 * 3_600, "count": 500}


def default_job_options(settings: Settings) -> dict[str, Any]:
    """Options every job gets unless its submitter overrides them."""
    return {
        "attempts": settings.worker_queue_job_attempts,
        "backoff": {"type": "exponential", "delay": BACKOFF_FIRST_DELAY_MS},
        "removeOnComplete": KEEP_COMPLETED,
        "removeOnFail": KEEP_FAILED,
    }


def create_queue(settings: Settings) -> Queue:
    """The `jobs` queue on REDIS_URL with the default job options."""
    return Queue(
        QUEUE_NAME,
        {"connection": settings.redis_url, "defaultJobOptions": default_job_options(settings)},
    )
