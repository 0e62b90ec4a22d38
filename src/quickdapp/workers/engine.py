"""The fast worker engine: BullMQ's Lua scripts and data layout, a lean asyncio loop.

It replaces bullmq's `Worker` behind the processor. Per engine: one auto-pipelined command
connection shared by all slots, one blocking connection for the marker waiter, N plain
task slots (no asyncio.wait over an in-flight set), and two timers (lock renewal, stalled
check). A slot's cycle: take a job (from the marker waiter, whose moveToActive rides behind
its BZPOPMIN, or by its own moveToActive), run `process`, finish it with
moveToFinished (or moveToDelayed/retryJob for a retry) with fetch-next on, so the reply
that finishes a job normally carries the slot's next one: one Lua call per job.

Contract with the caller:
- `process(job)` runs one attempt and returns an `Outcome`; it must not raise (if it does,
  the exception counts as the attempt's error).
- `finish_extras(job, outcome)` may return raw commands to run atomically with the call
  that ends the attempt (MULTI, extras, the BullMQ call, EXEC). A command in MULTI runs even
  when its neighbour fails, so an extra that must not outlive a lost lock should check the
  job's lock itself (a small Lua script comparing `job.token`, sent with EVAL so that it can
  never be missing). Extras may run twice when a connection drops before EXEC's reply, so
  they should be idempotent or deduplicated by (job id, attempt).
- `on_finished(job, outcome, recorded)` follows every finishing call: `recorded` is False
  when BullMQ refused it (the lock was lost: the stalled check took the job back).
- Jobs with a deferred failure (`defa`) are failed without `process`, but still go through
  `finish_extras` with an `Outcome` whose error is `DeferredFailure`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from quickdapp.broker import scripts as bull
from quickdapp.broker.connection import Arg, BrokerConnectionError, Connection, ReplyError
from quickdapp.broker.job import ActiveJob, parse_next
from quickdapp.broker.job_scheduler import next_iteration
from quickdapp.json_text import compact, compact_or_text
from quickdapp.workers.lock_renewal import OnStalled, Upkeep
from quickdapp.workers.wakeups import Wakeups

logger = logging.getLogger(__name__)

__all__ = ["ActiveJob", "DeferredFailure", "Engine", "FinishExtras", "Outcome", "Process"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended."""

    value: Any = None  # the return value when completed (JSON-serialisable)
    error: BaseException | None = None  # None: completed
    retry: bool = True  # False: fail now without further attempts (a permanent error)
    context: Any = None  # the caller's own: handed back to finish_extras and on_finished
    value_json: str | None = None  # `value` as compact JSON, when the caller encoded it already


class DeferredFailure(Exception):
    """A job that BullMQ marked to fail without running (its `defa` field)."""


Process = Callable[[ActiveJob], Awaitable[Outcome]]
FinishExtras = Callable[[ActiveJob, Outcome], Sequence[Sequence[Arg]]]
OnFinished = Callable[[ActiveJob, Outcome, bool], Awaitable[None]]
OnLost = Callable[[BaseException], Awaitable[None]]
OnRestored = Callable[[], Awaitable[None]]


def worker_client_name(prefix: str, queue: str, name: str) -> str:
    """The connection name Node BullMQ's getWorkers lists: `<prefix>:<base64(queue)>:w:<name>`."""
    encoded = base64.b64encode(queue.encode()).decode()
    return f"{prefix}:{encoded}:w:{name}"


class Engine:
    """Runs jobs of one BullMQ queue with `concurrency` slots (see the module docstring)."""

    def __init__(
        self,
        *,
        redis_url: str,
        queue: str = "jobs",
        prefix: str = "bull",
        name: str,
        concurrency: int,
        lock_duration_ms: int = 30_000,
        stalled_interval_ms: int = 30_000,
        max_stalled_count: int = 1,
        record_stalled_in: str | None = None,
        process: Process,
        finish_extras: FinishExtras | None = None,
        on_finished: OnFinished | None = None,
        on_stalled: OnStalled | None = None,
        on_lost: OnLost | None = None,
        on_restored: OnRestored | None = None,
        remove_on_complete: Any = None,
        remove_on_fail: Any = None,
        command_timeout: float = 30.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.name = name
        self.concurrency = concurrency
        self.client_name = worker_client_name(prefix, queue, name)
        self._redis_url = redis_url
        self._lock_duration_ms = lock_duration_ms
        self._stalled_interval_ms = stalled_interval_ms
        self._max_stalled_count = max_stalled_count
        self._record_stalled_in = record_stalled_in
        self._process = process
        self._finish_extras = finish_extras
        self._on_finished = on_finished
        self._on_stalled = on_stalled
        self._on_lost = on_lost
        self._on_restored = on_restored
        self._remove_on_complete = remove_on_complete
        self._remove_on_fail = remove_on_fail
        self._command_timeout = command_timeout
        self.scripts = bull.QueueScripts(queue, prefix)
        self._active: dict[str, ActiveJob] = {}
        self._slots: list[asyncio.Task[None]] = []
        self._tokens = (f"{uuid.uuid4().hex}:{n}" for n in itertools.count(1))
        self._closing = False
        self._down = False  # inside an outage, between "lost" and "restored"
        self._callbacks: set[asyncio.Task[None]] = set()
        self._conn: Connection | None = None
        self._wakeups: Wakeups | None = None
        self._upkeep: Upkeep | None = None

    # -- public ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (both connections named), load the scripts, start slots and timers."""
        conn = Connection(self._redis_url, name=self.client_name, command_timeout=self._command_timeout)
        # The blocking connection: no client-side timeout may cut its BZPOPMIN. Named apart
        # from the worker form so Node's getWorkers counts one entry per engine.
        bconn = Connection(
            self._redis_url,
            name=self.client_name.replace(":w:", ":wb:", 1),
            command_timeout=None,
            track_client_id=True,  # close() unblocks its BZPOPMIN
        )
        await self.scripts.load(conn)
        await self.scripts.load(bconn)  # the waiter's moveToActive behind each BZPOPMIN
        await asyncio.gather(conn.connect(), bconn.connect())
        self._conn = conn
        self._wakeups = Wakeups(
            bconn,
            conn,
            self.scripts.keys["marker"],
            waiting_keys=(self.scripts.keys["prioritized"], self.scripts.keys["wait"]),
            take_command=self._take_command,
            on_taken=self._taken,
            max_credits=self.concurrency,
            on_error=self._connection_failed,
            on_ok=self._connection_ok,
        )
        self._upkeep = Upkeep(
            conn,
            self.scripts,
            self._active,
            lock_duration_ms=self._lock_duration_ms,
            lock_renew_ms=max(self._lock_duration_ms // 2, 1),
            stalled_interval_ms=self._stalled_interval_ms,
            max_stalled_count=self._max_stalled_count,
            record_stalled_in=self._record_stalled_in,
            on_stalled=self._on_stalled,
            on_error=self._connection_failed,
            on_ok=self._connection_ok,
        )
        self._wakeups.start()
        self._upkeep.start()
        self._slots = [
            asyncio.create_task(self._slot(), name=f"engine-slot-{n}") for n in range(self.concurrency)
        ]
        self._wakeups.wake_one()  # one first look: the queue may hold jobs already
        logger.info("engine %s started: %d slots", self.client_name, self.concurrency)

    def active_job_ids(self) -> list[str]:
        """Ids of the jobs running now."""
        return list(self._active)

    async def load_script(self, text: str) -> str:
        """Register a Lua script for `finish_extras` (loaded after every reconnect); its SHA1."""
        return await self._connection().load_script(text)

    async def update_progress(self, job: ActiveJob, value: Any) -> None:
        """Store a job's progress (any JSON value) and emit BullMQ's `progress` event."""
        progress = compact(value)
        reply = await bull.call(self._connection(), self.scripts.update_progress(job.id, progress))
        if isinstance(reply, int) and reply < 0:
            raise KeyError(f"job {job.id} no longer exists")

    async def add_log(self, job: ActiveJob, line: str) -> int:
        """Append a line to the job's log (kept to its `keepLogs` option); the log's length."""
        keep = job.safe_opts().get("kl")
        keep_logs = keep if isinstance(keep, int) and keep > 0 else None
        reply = await bull.call(self._connection(), self.scripts.add_log(job.id, line, keep_logs))
        if isinstance(reply, int) and reply < 0:
            raise KeyError(f"job {job.id} no longer exists")
        return int(reply)

    async def close(self, timeout: float) -> list[str]:
        """Stop taking jobs, let active ones finish for up to `timeout` s; ids still running.

        Jobs still running then are cancelled and left active in Redis: their locks lapse
        and a stalled check hands them to another worker.
        """
        self._closing = True
        if self._wakeups is not None:
            await self._wakeups.close()
        still_running: list[str] = []
        if self._slots:
            _, pending = await asyncio.wait(self._slots, timeout=timeout)
            still_running = list(self._active)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._upkeep is not None:
            await self._upkeep.close()
        if self._conn is not None:
            await self._conn.close()
        if self._wakeups is not None:
            await self._wakeups._bconn.close()
        await asyncio.gather(*self._callbacks, return_exceptions=True)
        logger.info("engine %s closed; still running: %s", self.client_name, still_running)
        return still_running

    # -- slots -----------------------------------------------------------------------

    def _connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("engine not started")
        return self._conn

    async def _slot(self) -> None:
        job: ActiveJob | None = None
        look_now = False  # the last finish put a job back in wait (retryJob): take without waiting
        while True:
            if job is None:
                job = await self._take(look_now)
                look_now = False
                if job is None and self._closing:
                    return
                continue
            self._active[job.id] = job
            job, look_now = await self._run(job)

    def _take_command(self) -> tuple[str, tuple[Arg, ...]]:
        """A new lock token and the moveToActive that takes a job under it."""
        token = next(self._tokens)
        return token, self.scripts.move_to_active(token, self._lock_duration_ms, self.name)

    def _taken(self, job: ActiveJob) -> None:
        """The marker waiter took `job` for a slot: its lock is renewed from now on."""
        self._active[job.id] = job

    async def _take(self, look_now: bool) -> ActiveJob | None:
        """Wait for work (unless `look_now`): a job the marker waiter took, or a wake, and
        then moveToActive; None when nothing came (or the engine is closing)."""
        assert self._wakeups is not None
        if not look_now:
            taken = await self._wakeups.park()
            if taken is not None:
                return taken
        backoff = 0.1
        while not self._closing:
            token, command = self._take_command()
            try:
                reply = await bull.call(self._connection(), command)
            except BrokerConnectionError as exc:
                self._connection_failed(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            except ReplyError as exc:
                logger.error("moveToActive failed: %s", exc)
                await asyncio.sleep(1.0)
                return None
            self._connection_ok()
            found = parse_next(reply, token)
            if found.delay_until_ms:
                self._wakeups.arm_delay(found.delay_until_ms)
            return found.job
        return None

    async def _run(self, job: ActiveJob) -> tuple[ActiveJob | None, bool]:
        """One attempt: start, process, finish; the next job (from fetch-next) and look-now."""
        try:
            if job.repeat_job_key:
                await self._advance_scheduler(job)
            if job.deferred_failure:
                outcome = Outcome(error=DeferredFailure(job.deferred_failure), retry=False)
            else:
                try:
                    outcome = await self._process(job)
                except Exception as exc:  # the contract says never; count it as the error
                    logger.exception("process raised for job %s", job.id)
                    outcome = Outcome(error=exc)
            return await self._finish(job, outcome)
        finally:
            if self._active.get(job.id) is job:
                del self._active[job.id]

    async def _advance_scheduler(self, job: ActiveJob) -> None:
        """Queue the scheduler's next iteration, as bullmq's Worker does when its job starts."""
        try:
            nxt = next_iteration(job)
            if nxt is None or job.repeat_job_key is None:
                return
            next_millis, template, opts = nxt
            await bull.call(
                self._connection(),
                self.scripts.update_job_scheduler(
                    job.repeat_job_key,
                    next_millis=next_millis,
                    template_data=template,
                    job_opts=opts,
                    producer_id=job.id,
                ),
            )
        except Exception as exc:  # the current job still runs; only the next one is missing
            logger.error("job scheduler %s: next iteration not added: %s", job.repeat_job_key, exc)

    # -- finishing ---------------------------------------------------------------------

    def _finishing_command(
        self, job: ActiveJob, outcome: Outcome, fetch_next: bool
    ) -> tuple[tuple[Arg, ...], bool]:
        """The BullMQ call that ends this attempt, and whether it returns the job to wait."""
        opts = job.safe_opts()
        common: dict[str, Any] = {
            "token": job.token,
            "fetch_next": fetch_next,
            "lock_duration_ms": self._lock_duration_ms,
            "worker_name": self.name,
        }
        if outcome.error is None:
            try:
                value = outcome.value_json or compact(outcome.value)
            except (TypeError, ValueError) as exc:
                outcome = Outcome(error=TypeError(f"return value is not JSON: {exc}"))
            else:
                command = self.scripts.move_to_finished(
                    job.id,
                    completed=True,
                    value=value,
                    remove=opts.get("removeOnComplete", self._remove_on_complete),
                    attempts=job.attempts,
                    attempts_made=job.attempts_made,
                    parent_flags=job.parent_flags(),
                    **common,
                )
                return command, False
        error = outcome.error
        assert error is not None
        fields = {"failedReason": str(error), "stacktrace": _stacktrace(job, error)}
        if outcome.retry and job.attempts_made + 1 < job.attempts:
            delay = job.backoff_ms()
            if delay:
                command = self.scripts.move_to_delayed(
                    job.id, delay_ms=delay, fields_to_update=fields, **common
                )
                return command, False
            lifo = bool(opts.get("lifo"))
            command = self.scripts.retry_job(job.id, token=job.token, lifo=lifo, fields_to_update=fields)
            return command, True
        command = self.scripts.move_to_finished(
            job.id,
            completed=False,
            value=str(error),
            remove=opts.get("removeOnFail", self._remove_on_fail),
            attempts=job.attempts,
            attempts_made=job.attempts_made,
            parent_flags=job.parent_flags(),
            fields_to_update=fields,
            **common,
        )
        return command, False

    async def _finish(self, job: ActiveJob, outcome: Outcome) -> tuple[ActiveJob | None, bool]:
        """End the attempt in BullMQ (with the caller's extras), tell `on_finished` whether
        BullMQ recorded it, and return the next job (fetch-next) and look-now."""
        fetch_next = not self._closing
        command, back_to_wait = self._finishing_command(job, outcome, fetch_next)
        extras = self._finish_extras(job, outcome) if self._finish_extras is not None else ()
        reply, recorded = await self._end_attempt(job, command, extras)
        if self._on_finished is not None:
            try:
                await self._on_finished(job, outcome, recorded)
            except Exception:
                logger.exception("on_finished failed for job %s", job.id)
        if reply is None:
            return None, False
        found = parse_next(reply, job.token)
        if found.delay_until_ms and self._wakeups is not None:
            self._wakeups.arm_delay(found.delay_until_ms)
        return found.job, back_to_wait and not self._closing

    async def _end_attempt(
        self, job: ActiveJob, command: Sequence[Arg], extras: Sequence[Sequence[Arg]]
    ) -> tuple[Any, bool]:
        """Run the finishing call; its reply (None when refused) and whether it took effect."""
        conn = self._connection()
        backoff = 0.1
        reply_lost = False
        while True:
            try:
                if extras:
                    replies = await conn.transaction([*extras, command])
                    reply = replies[-1]
                    if bull.is_noscript(reply):
                        # BullMQ's script was flushed (SCRIPT FLUSH while connected): the
                        # extras ran alone, so they must tolerate running again.
                        await conn.reload_scripts()
                        continue
                    if isinstance(reply, ReplyError):
                        raise reply
                else:
                    reply = await bull.call(conn, command)
                break
            except BrokerConnectionError as exc:
                # Retried until Redis answers: the attempt is done and must be recorded.
                self._connection_failed(exc)
                reply_lost = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            except ReplyError as exc:
                logger.error("job %s: finishing call failed: %s", job.id, exc)
                return None, False
        self._connection_ok()
        if isinstance(reply, int) and reply < 0:
            if reply_lost:
                # Most likely the earlier try went through and only its reply was lost.
                logger.info("job %s: already finished before the connection dropped", job.id)
                return None, True
            logger.warning(
                "job %s: BullMQ refused to finish it (code %d: lock lost or job gone)", job.id, reply
            )
            return None, False
        return reply, True

    # -- outage reporting --------------------------------------------------------------

    def _connection_failed(self, exc: BaseException) -> None:
        if self._down or self._closing:
            return
        self._down = True
        # The caller's on_lost says it to the operator; here it is detail.
        logger.log(
            logging.DEBUG if self._on_lost else logging.WARNING,
            "engine %s lost Redis: %s",
            self.client_name,
            exc,
        )
        if self._on_lost is not None:
            self._spawn(self._on_lost(exc))

    def _connection_ok(self) -> None:
        if not self._down:
            return
        self._down = False
        logger.log(
            logging.DEBUG if self._on_restored else logging.INFO,
            "engine %s: Redis restored",
            self.client_name,
        )
        if self._on_restored is not None:
            self._spawn(self._on_restored())

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception:
                logger.exception("outage callback failed")

        task = asyncio.create_task(guarded())
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)


def _stacktrace(job: ActiveJob, error: BaseException) -> str:
    """The job's stack traces with this error's appended (bullmq keeps one per attempt)."""
    try:
        stack = json.loads(job.fields.get("stacktrace") or "[]")
    except ValueError:
        stack = []
    if not isinstance(stack, list):
        stack = []
    stack.append("".join(traceback.format_exception(error)))
    limit = job.safe_opts().get("stackTraceLimit")
    if limit == 0:
        stack = []
    elif isinstance(limit, int) and limit > 0:
        stack = stack[-limit:]
    return compact_or_text(stack)
