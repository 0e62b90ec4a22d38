"""Where idle job slots wait, and what wakes them: one marker waiter and one delay timer.

BullMQ's scripts add a member to the queue's `marker` sorted set whenever a job becomes
available (score 0) or a delayed job is queued (score: its due time). One waiter per
engine blocks on that key with BZPOPMIN on its own connection, and only while some slot
is idle; each marker it pops wakes one idle slot, which then calls moveToActive. The
hand-out itself adds a new marker, so a burst of jobs wakes slot after slot.

Delayed jobs: Redis (at its default hz 10) notices that a BZPOPMIN timed out only on its
100 ms tick, so the waiter does not rely on a timeout for them. moveToActive and the
fetch-next replies say when the next delayed job is due; `arm_delay` sets a local timer for
that moment, which wakes a slot that promotes and takes the job (<= a few ms late).

A wake with no idle slot is kept as a credit for the next slot that goes idle, so a marker
popped while every slot was busy is not lost (the job would otherwise wait for the next
marker or the 10 s timeout).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from quickdapp.broker.connection import BrokerConnectionError, Connection, ReplyError

logger = logging.getLogger(__name__)

# The longest BZPOPMIN (s): a heartbeat of the idle connection; it never has a client timeout.
BLOCK_TIMEOUT_S = 10


class Wakeups:
    """Parks idle slots; wakes one per marker and when the next delayed job comes due."""

    def __init__(
        self,
        bconn: Connection,
        marker_key: str,
        *,
        max_credits: int,
        on_error: Callable[[BaseException], None],
        on_ok: Callable[[], None],
    ) -> None:
        self._bconn = bconn
        self._marker_key = marker_key
        self._max_credits = max_credits
        self._on_error = on_error
        self._on_ok = on_ok
        self._loop = asyncio.get_running_loop()
        self._parked: deque[asyncio.Future[None]] = deque()
        self._someone_parked = asyncio.Event()
        self._credits = 0
        self._closing = False
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

    async def park(self) -> None:
        """Wait until woken (returns at once with a credit, or when closing)."""
        if self._closing:
            return
        if self._credits:
            self._credits -= 1
            return
        future: asyncio.Future[None] = self._loop.create_future()
        self._parked.append(future)
        self._someone_parked.set()
        try:
            await future
        finally:
            if not future.done():  # cancelled while parked
                self._parked.remove(future)

    def wake_one(self) -> None:
        """Wake one parked slot, or keep the wake for the next slot to park."""
        while self._parked:
            future = self._parked.popleft()
            if not future.done():
                future.set_result(None)
                return
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
        """Stop waiting for markers and release every parked slot."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._parked:
            future = self._parked.popleft()
            if not future.done():
                future.set_result(None)

    async def _wait_for_markers(self) -> None:
        backoff = 0.1
        while not self._closing:
            if not self._parked:
                # Nobody to wake: leave the marker in Redis for whoever asks next.
                self._someone_parked.clear()
                await self._someone_parked.wait()
                continue
            try:
                reply = await self._bconn.execute("BZPOPMIN", self._marker_key, BLOCK_TIMEOUT_S)
            except BrokerConnectionError as exc:
                self._on_error(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                self.wake_one()  # markers may have been lost with the old Redis: look once
                continue
            except ReplyError as exc:
                logger.error("BZPOPMIN on %s failed: %s", self._marker_key, exc)
                await asyncio.sleep(1.0)
                continue
            backoff = 0.1
            self._on_ok()
            if reply is None:
                self.wake_one()  # a quiet 10 s: one look, in case a wake went astray
                continue
            due_ms = int(float(reply[2]))
            if due_ms > time.time() * 1000:
                self.arm_delay(due_ms)  # a delayed job was queued: due later
            else:
                self.wake_one()
