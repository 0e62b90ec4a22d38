"""Where idle job slots wait, and what hands them work: one marker waiter and one delay timer.

BullMQ's scripts add a member to the queue's `marker` sorted set whenever a job becomes
available (score 0) or a delayed job is queued (score: its due time). One waiter per
engine blocks on that key with BZPOPMIN on its own connection, and only while some slot
is idle. Right behind the BZPOPMIN it sends a moveToActive on the same connection: Redis
holds it back until the BZPOPMIN returns and then runs it at once, so a job added to an idle
queue is taken within the reply to the wait, without another round trip, and handed to an
idle slot. The hand-out itself adds a new marker, so a burst of jobs is taken job after job;
and since the same pipeline counts the jobs still waiting (ZCARD of the prioritized set, LLEN
of the wait list), as many idle slots as there are such jobs are woken to take one each on the
command connection meanwhile: 50 idle slots fill in a few round trips, not 50 in a row.

Delayed jobs: Redis (at its default hz 10) notices that a BZPOPMIN timed out only on its
100 ms tick, so the waiter does not rely on a timeout for them. moveToActive and the
fetch-next replies say when the next delayed job is due; `arm_delay` sets a local timer for
that moment, which wakes a slot that promotes and takes the job (<= a few ms late).

A wake with no idle slot is kept as a credit for the next slot that goes idle, and a job taken
when no slot is idle any more waits for the next one, so neither is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

from quickdapp.broker.connection import Arg, BrokerConnectionError, Connection, ReplyError
from quickdapp.broker.job import ActiveJob, parse_next
from quickdapp.broker.scripts import is_noscript

logger = logging.getLogger(__name__)

# The longest BZPOPMIN (s): a heartbeat of the idle connection; it never has a client timeout.
BLOCK_TIMEOUT_S = 10
CLOSE_WAIT_S = 2.0  # how long close() waits for the waiter's last replies

TakeCommand = Callable[[], tuple[str, Sequence[Arg]]]  # a new lock token and its moveToActive


class Wakeups:
    """Parks idle slots; hands each a job the waiter took, or wakes it to look itself."""

    def __init__(
        self,
        bconn: Connection,
        control: Connection,
        marker_key: str,
        *,
        waiting_keys: tuple[str, str],
        take_command: TakeCommand,
        on_taken: Callable[[ActiveJob], None],
        max_credits: int,
        on_error: Callable[[BaseException], None],
        on_ok: Callable[[], None],
    ) -> None:
        self._bconn = bconn
        self._control = control  # the engine's command connection: CLIENT UNBLOCK on close
        self._marker_key = marker_key
        self._prioritized_key, self._wait_key = waiting_keys  # where due jobs wait
        self._take_command = take_command
        self._on_taken = on_taken
        self._max_credits = max_credits
        self._on_error = on_error
        self._on_ok = on_ok
        self._loop = asyncio.get_running_loop()
        self._parked: deque[asyncio.Future[ActiveJob | None]] = deque()
        self._taken: deque[ActiveJob] = deque()  # taken while no slot was idle
        self._someone_parked = asyncio.Event()
        self._credits = 0
        self._closing = False
        self._blocked = False  # a BZPOPMIN is out
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due_ms = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def idle(self) -> int:
        """How many slots are parked now."""
        return len(self._parked)

    def start(self) -> None:
        """Start the marker waiter."""
        self._task = self._loop.create_task(self._wait_for_markers(), name="engine-marker-waiter")

    async def park(self) -> ActiveJob | None:
        """Wait for work: a job the waiter took for this slot, or None (a wake: look yourself,
        or the engine is closing). Returns at once with a job waiting or a credit."""
        if self._taken:
            return self._taken.popleft()
        if self._closing:
            return None
        if self._credits:
            self._credits -= 1
            return None
        future: asyncio.Future[ActiveJob | None] = self._loop.create_future()
        self._parked.append(future)
        self._someone_parked.set()
        try:
            return await future
        finally:
            if not future.done():  # cancelled while parked
                self._parked.remove(future)

    def wake_one(self) -> None:
        """Wake one parked slot, or keep the wake for the next slot to park."""
        if not self._hand_over(None):
            self._credits = min(self._credits + 1, self._max_credits)

    def arm_delay(self, due_ms: int) -> None:
        """Wake a slot when the delayed job due at `due_ms` (epoch ms) can be promoted."""
        if self._closing or (self._timer is not None and self._timer_due_ms <= due_ms):
            return
        if self._timer is not None:
            self._timer.cancel()
        # +1 ms: moveToActive promotes jobs due at or before its own timestamp in whole ms.
        delay_s = max(due_ms + 1 - time.time() * 1000, 0) / 1000
        self._timer_due_ms = due_ms
        self._timer = self._loop.call_later(delay_s, self._on_due)

    def _on_due(self) -> None:
        self._timer = None
        self.wake_one()

    async def close(self) -> None:
        """Stop waiting for markers and release every parked slot.

        A BZPOPMIN still out is ended with CLIENT UNBLOCK, so the moveToActive behind it runs
        now rather than after this engine is gone: a job it takes is handed to a slot, which
        runs it while the engine closes, instead of lying unrun until its lock lapses.
        """
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = self._task
        if task is not None and not task.done():
            self._someone_parked.set()  # a waiter waiting for a parked slot: let it see closing
            if self._blocked and self._bconn.client_id is not None:
                try:
                    await asyncio.wait_for(
                        self._control.execute("CLIENT", "UNBLOCK", self._bconn.client_id), CLOSE_WAIT_S
                    )
                except (TimeoutError, BrokerConnectionError, ReplyError) as exc:
                    logger.info("marker waiter not unblocked: %s", exc)
            try:
                await asyncio.wait_for(asyncio.shield(task), CLOSE_WAIT_S)
            except TimeoutError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        # Release every parked slot. None has a job waiting for it: a slot parks only while no
        # taken job waits, and a job waits only while no slot is parked.
        while self._hand_over(None):
            pass

    def _hand_over(self, job: ActiveJob | None) -> bool:
        """Give `job` (or a wake, None) to a parked slot; False when none is parked."""
        while self._parked:
            future = self._parked.popleft()
            if not future.done():
                future.set_result(job)
                return True
        return False

    def _taken_job(self, job: ActiveJob) -> None:
        self._on_taken(job)
        if not self._hand_over(job):
            self._taken.append(job)

    async def _wait_for_markers(self) -> None:
        backoff = 0.1
        while not self._closing:
            if not self._parked:
                # Nobody to hand work to: leave the marker in Redis for whoever asks next.
                self._someone_parked.clear()
                await self._someone_parked.wait()
                continue
            token, take = self._take_command()
            self._blocked = True
            try:
                marker, taken, prioritized, waiting = await self._bconn.pipeline(
                    [
                        ("BZPOPMIN", self._marker_key, BLOCK_TIMEOUT_S),
                        take,
                        ("ZCARD", self._prioritized_key),
                        ("LLEN", self._wait_key),
                    ]
                )
            except BrokerConnectionError as exc:
                self._on_error(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                self.wake_one()  # markers may have been lost with the old Redis: look once
                continue
            finally:
                self._blocked = False
            backoff = 0.1
            self._on_ok()
            self._take_from(token, taken)
            for count in (prioritized, waiting):
                self._wake_for(count)
            if isinstance(marker, ReplyError):  # the key is not a sorted set: do not spin
                logger.error("BZPOPMIN on %s failed: %s", self._marker_key, marker)
                await asyncio.sleep(1.0)
            elif isinstance(marker, list) and len(marker) > 2:
                due_ms = int(float(marker[2]))
                if due_ms > time.time() * 1000:
                    self.arm_delay(due_ms)  # a delayed job was queued: due later
            # Any other marker needs nothing more: the moveToActive behind it has looked.
            # A slot given a job starts it before the next wait is written: that write used to
            # come first, ~0.1-0.2 ms on the way of each job added to an idle queue.
            await asyncio.sleep(0)

    def _wake_for(self, jobs: object) -> None:
        """Wake up to `jobs` parked slots (a count Redis gave; not a number: none)."""
        for _ in range(jobs if isinstance(jobs, int) else 0):
            if not self._hand_over(None):
                return

    def _take_from(self, token: str, taken: object) -> None:
        """Hand over the job the moveToActive behind the wait took, if any."""
        if isinstance(taken, ReplyError):
            # NOSCRIPT (scripts flushed) or a script error: a slot looks on the engine's
            # connection, which reloads its scripts after a NOSCRIPT; this connection reloads
            # them when it reconnects.
            logger.warning("moveToActive behind the marker wait failed: %s", taken)
            if is_noscript(taken):
                self._bconn.abort()
            self.wake_one()
            return
        found = parse_next(taken, token)
        if found.job is not None:
            self._taken_job(found.job)
        elif found.delay_until_ms:
            self.arm_delay(found.delay_until_ms)
