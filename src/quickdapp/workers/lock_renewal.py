"""The engine's two timers: lock renewal for its active jobs, and BullMQ's stalled check.

Lock renewal: one batched `extendLocks` call per interval (half the lock duration, as
Node's lockRenewTime) for every job the engine holds, however many; a job whose lock could
not be renewed has been (or will be) taken back by a stalled check, so it is logged.

Stalled check: `moveStalledJobsToWait` every stalled interval (the first at start, as
Node does). The script itself makes sure only one worker per interval does the work; each
attempt it took back is captured in the same transaction (and, with `record_stalled_in`, added
to that stream there) and goes to the `on_stalled` callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from quickdapp.broker import scripts as bull
from quickdapp.broker.connection import BrokerConnectionError, Connection, ReplyError
from quickdapp.broker.job import ActiveJob, StalledAttempt

logger = logging.getLogger(__name__)

OnStalled = Callable[[list[StalledAttempt]], Awaitable[None]]
"""Called with the attempts a stalled check took back (their jobs back in wait)."""


class Upkeep:
    """Runs lock renewal and the stalled check until closed."""

    def __init__(
        self,
        conn: Connection,
        scripts: bull.QueueScripts,
        active: Mapping[str, ActiveJob],
        *,
        lock_duration_ms: int,
        lock_renew_ms: int,
        stalled_interval_ms: int,
        max_stalled_count: int,
        record_stalled_in: str | None,
        on_stalled: OnStalled | None,
        on_error: Callable[[BaseException], None],
        on_ok: Callable[[], None],
    ) -> None:
        self._conn = conn
        self._scripts = scripts
        self._active = active
        self._lock_duration_ms = lock_duration_ms
        self._lock_renew_ms = lock_renew_ms
        self._stalled_interval_ms = stalled_interval_ms
        self._max_stalled_count = max_stalled_count
        self._record_stalled_in = record_stalled_in
        self._on_stalled = on_stalled
        self._on_error = on_error
        self._on_ok = on_ok
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start both timers."""
        self._tasks = [
            asyncio.create_task(self._renew_locks(), name="engine-lock-renewal"),
            asyncio.create_task(self._check_stalled(), name="engine-stalled-check"),
        ]

    async def close(self) -> None:
        """Stop both timers (call after the last active job has finished)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def renew_now(self) -> list[str]:
        """Renew the locks of all active jobs in one call; return the ids of those still
        running whose lock could not be renewed."""
        jobs = list(self._active.values())
        if not jobs:
            return []
        command = self._scripts.extend_locks(
            [job.id for job in jobs], [job.token for job in jobs], self._lock_duration_ms
        )
        failed = await bull.call(self._conn, command)
        # A job that finished while the call was on its way released its lock: not a failure.
        return [str(i) for i in failed or [] if self._active.get(str(i)) in jobs]

    async def _renew_locks(self) -> None:
        while True:
            await asyncio.sleep(self._lock_renew_ms / 1000)
            if not self._active:
                continue  # nothing asked of Redis, so nothing learnt about it either
            try:
                failed = await self.renew_now()
            except (BrokerConnectionError, ReplyError) as exc:
                if isinstance(exc, BrokerConnectionError):
                    self._on_error(exc)
                logger.warning("lock renewal failed: %s", exc)
                continue
            self._on_ok()
            for job_id in failed:
                # Its lock lapsed: a stalled check may already have handed it to another worker.
                logger.warning("could not renew the lock of job %s", job_id)

    async def _stalled_check(self) -> list[StalledAttempt]:
        """BullMQ's stalled check, each attempt it took back captured in the same transaction
        (so no worker can start the job's next attempt in between, and none is lost)."""
        commands = self._scripts.stalled_check(
            self._max_stalled_count,
            self._stalled_interval_ms,
            record_in=self._record_stalled_in,
            lock_duration_ms=self._lock_duration_ms,
        )
        replies = await bull.call_all(self._conn, commands)
        return [StalledAttempt.from_json(entry) for entry in replies[-1] or []]

    async def _check_stalled(self) -> None:
        while True:
            try:
                stalled = await self._stalled_check()
            except (BrokerConnectionError, ReplyError) as exc:
                if isinstance(exc, BrokerConnectionError):
                    self._on_error(exc)
                logger.warning("stalled check failed: %s", exc)
            else:
                self._on_ok()
                if stalled:
                    ids = ", ".join(attempt.job_id for attempt in stalled)
                    logger.warning("stalled jobs moved back: %s", ids)
                    if self._on_stalled is not None:
                        try:
                            await self._on_stalled(stalled)
                        except Exception:
                            logger.exception("on_stalled callback failed")
            await asyncio.sleep(self._stalled_interval_ms / 1000)
