"""Stalled attempts: attempts whose process died (or froze) never end on their own.

BullMQ's stalled check (any live worker runs it, see workers/lock_renewal.py) moves such a job
back to wait and, in the same transaction, captures the attempt that stalled and adds it to the
audit stream (broker/scripts.py `stalled_check`): the row cannot be lost, even when the process
that ran the check dies the next moment. Here the same captures go through the attempt hooks'
`stalled`, for the log and the metrics. After WORKER_QUEUE_MAX_STALLED_COUNT stalls BullMQ
marks the job, and the next worker to take it fails it with "job stalled more than allowable
limit" without running it: that last attempt ends in the worker like any other
(workers/processor.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from quickdapp.audit.stalled import stalled_execution
from quickdapp.broker.job import StalledAttempt
from quickdapp.workers.hooks import Hooks

logger = logging.getLogger(__name__)


async def report_stalled_attempts(hooks: Hooks, captured: Sequence[StalledAttempt]) -> None:
    """Log each attempt the stalled check took back and hand it to the hooks."""
    for stalled in captured:
        execution = stalled_execution(stalled)
        logger.warning(
            "%s job %s attempt %d %s", execution.type, stalled.job_id, stalled.attempt, execution.error
        )
        await hooks.stalled(execution)
