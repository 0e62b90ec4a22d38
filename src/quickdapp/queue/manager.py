"""QueueManager: the one way in for jobs (submit, schedules, actions on jobs) and the queue's health."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from bullmq import Job, Queue, QueueEvents
from pydantic import BaseModel

from quickdapp.config import Settings
from quickdapp.errors import JobBatchError, PayloadTooLargeError, PermanentJobError
from quickdapp.jobs.registry import MAX_PRIORITY, JobRegistry
from quickdapp.json_text import compact
from quickdapp.keys import (
    EVENTS,
    JOB_STATES,
    PENDING_STATES,
    QUEUE_NAME,
    QUEUE_OWN_SUFFIXES,
    REPEAT,
    JobState,
    job_key,
    names_a_job,
    queue_key,
    scheduler_job_id,
)
from quickdapp.limits import (
    MAX_ATTEMPTS,
    MAX_BULK_JOBS,
    MAX_DELAY_MS,
    MAX_JOB_ID_LENGTH,
    check_int,
    check_user_id,
    shown,
)
from quickdapp.queue.adding import JobAdder, NewJob
from quickdapp.queue.cron import validate_cron_pattern
from quickdapp.queue.inspection import JobRecord, QueueInspection, WorkerProcessInfo
from quickdapp.queue.intervals import parse_interval
from quickdapp.queue.job_options import create_queue, default_job_options
from quickdapp.queue.payload import PayloadFormError, job_payload, read_payload
from quickdapp.redis_client import RedisHealth, redis_health

logger = logging.getLogger(__name__)

EVENTS_BLOCK_MS = 1_000
IDEMPOTENCY_TTL_MS = 24 * 3_600 * 1_000
"""How long an idempotency key is remembered after the job it made was added."""


class JobStateError(Exception):
    """The job exists but is not in a state that allows what was asked."""


@dataclass(frozen=True)
class QueueHealth:
    """Counts, never job lists: cheap enough to call on every health probe."""

    queue: str
    counts: dict[JobState, int]
    paused: bool
    workers: int
    redis: RedisHealth
    warnings: list[str] = field(default_factory=list)
    processes: list[WorkerProcessInfo] = field(default_factory=list)


@dataclass(frozen=True)
class CronJob:
    """One job scheduler as stored in Redis: on a cron `pattern`, or `every` N milliseconds."""

    key: str
    type: str
    pattern: str | None
    tz: str | None
    next_run: datetime | None
    data: Any
    owner: str | None = None
    every: int | None = None  # milliseconds, for `every` schedulers (pattern is None then)


@dataclass(frozen=True)
class JobRequest:
    """One job for `submit_jobs`, with `submit_job`'s arguments."""

    job_type: str
    data: Any = None
    user_id: int | None = None
    delay: int | None = None
    job_id: str | None = None
    idempotency_key: str | None = None
    attempts: int | None = None
    priority: int | None = None
    backoff: dict[str, Any] | int | None = None


class QueueManager:
    """Submits typed jobs to the `jobs` queue and manages its cron schedules.

    Data is validated against the job type's model before anything reaches Redis: an
    unknown type or bad data raises, and nothing is enqueued.
    """

    def __init__(self, settings: Settings, registry: JobRegistry) -> None:
        self._settings = settings
        self._registry = registry
        self.queue: Queue = create_queue(settings)
        self.inspect = QueueInspection(self.queue)
        self._adder = JobAdder(settings.redis_url)
        self._events: QueueEvents | None = None
        self._events_task: asyncio.Task[None] | None = None

    def _payload(self, job_type: str, data: Any, user_id: int | None) -> tuple[dict[str, Any], str]:
        """{userId, data} as the job will hold it, and as JSON; raises ValueError
        (JobValidationError, PayloadTooLargeError) or UnknownJobTypeError for what cannot be
        enqueued."""
        if not isinstance(job_type, str):
            raise ValueError(f"the job type must be a string, got {shown(job_type)}")
        definition = self._registry.get(job_type)
        if isinstance(data, BaseModel):
            data = data.model_dump(by_alias=True)
        model = definition.parse(data)
        payload = job_payload(
            check_user_id(user_id),
            model.model_dump(mode="json", by_alias=True, exclude_none=True),
        )
        try:
            text = compact(payload)
        except (ValueError, RecursionError) as exc:  # NaN, or nesting deeper than JSON tools go
            raise ValueError(f"job data cannot be stored as JSON: {type(exc).__name__}") from None
        limit = self._settings.max_job_payload_bytes
        if (size := len(text.encode())) > limit:
            raise PayloadTooLargeError(
                f"job data is {size} bytes of JSON, more than MAX_JOB_PAYLOAD_BYTES={limit}"
            )
        return payload, text

    def job_data(self, job_type: str, data: Any) -> Any:
        """`data` as a job of `job_type` stores it: validated, defaults filled in, in JSON form."""
        return self._payload(job_type, data, None)[0]["data"]

    def job_options(self, job_type: str, **overrides: Any) -> dict[str, Any]:
        """The BullMQ options a job of `job_type` is added with: the defaults, the type's
        priority and options, then `overrides` that are not None."""
        definition = self._registry.get(job_type)
        options = {**default_job_options(self._settings), "priority": definition.priority}
        options.update(definition.options)
        options.update({k: v for k, v in overrides.items() if v is not None})
        return options

    async def submit_job(
        self,
        job_type: str,
        data: Any = None,
        user_id: int | None = None,
        *,
        delay: int | None = None,
        job_id: str | None = None,
        idempotency_key: str | None = None,
        attempts: int | None = None,
        priority: int | None = None,
        backoff: dict[str, Any] | int | None = None,
    ) -> str:
        """Validate and enqueue one job; returns its id.

        `delay` is in milliseconds. A `job_id` that already exists is not added twice (the
        existing job's id is returned). An `idempotency_key` makes a retried call safe: it
        becomes the job's id and its BullMQ deduplication id, kept IDEMPOTENCY_TTL_MS (24 h), so
        the same key enqueues once in that window even after the job has finished and been
        removed from Redis; every call with it returns the same id (its data is not compared).
        """
        request = JobRequest(
            job_type, data, user_id, delay, job_id, idempotency_key, attempts, priority, backoff
        )
        job = self._new_job(request)
        submitted = await self._adder.add(job)
        logger.info("submitted %s job %s (priority %s)", job_type, submitted, job.options["priority"])
        return submitted

    async def submit_jobs(self, requests: Sequence[JobRequest]) -> list[str]:
        """Validate and enqueue up to MAX_BULK_JOBS jobs at once, all or none; returns their ids.

        Every request is checked first: one that `submit_job` would refuse raises
        `JobBatchError` naming its index, and nothing is enqueued. The jobs then go to Redis in
        one MULTI/EXEC (as BullMQ's `addBulk`), so Redis adds them all or none.
        """
        if not 1 <= len(requests) <= MAX_BULK_JOBS:
            raise ValueError(f"submit 1..{MAX_BULK_JOBS} jobs at once, got {len(requests)}")
        jobs = []
        for index, request in enumerate(requests):
            try:
                jobs.append(self._new_job(request))
            except (PermanentJobError, ValueError) as exc:
                raise JobBatchError(index, exc) from exc
        submitted = await self._adder.add_all(jobs)
        logger.info("submitted %d jobs", len(submitted))
        return submitted

    def _new_job(self, request: JobRequest) -> NewJob:
        """The job `request` asks for, validated and with its options; raises what
        `submit_job` documents for a job it refuses."""
        data_json = self._payload(request.job_type, request.data, request.user_id)[1]
        if request.delay is not None:
            check_int("delay (ms)", request.delay, 0, MAX_DELAY_MS)
        if request.attempts is not None:
            check_int("attempts", request.attempts, 1, MAX_ATTEMPTS)
        if request.priority is not None:
            check_int("priority", request.priority, 1, MAX_PRIORITY)
        job_id = request.job_id
        if job_id is not None:
            check_job_id(job_id)
        deduplication = None
        if (key := request.idempotency_key) is not None:
            check_job_id(key)
            if job_id is not None and job_id != key:
                raise ValueError("give a job_id or an idempotency_key, not two different ones")
            job_id = key
            deduplication = {"id": key, "ttl": IDEMPOTENCY_TTL_MS}
        options = self.job_options(
            request.job_type,
            delay=request.delay,
            jobId=job_id or uuid4().hex,
            deduplication=deduplication,
            attempts=request.attempts,
            priority=request.priority,
            backoff=request.backoff,
        )
        return NewJob(request.job_type, data_json, options)

    async def schedule_cron_job(
        self,
        job_type: str,
        pattern: str,
        data: Any = None,
        key: str | None = None,
        tz: str | None = None,
        user_id: int | None = None,
        *,
        owner: str | None = None,
    ) -> CronJob:
        """Create or update the job scheduler `key` (default: the job type) to run on `pattern`.

        Patterns have 5 fields, or 6 with seconds first (`*/3 * * * * *`). Upserting the same
        key again replaces its pattern and data, so repeated start-ups never duplicate it.
        `owner` marks who manages the schedule (the default-jobs table marks its own).
        """
        validate_cron_pattern(pattern, tz)
        repeat: dict[str, Any] = {"pattern": pattern}
        if tz:
            repeat["tz"] = tz
        return await self._upsert_scheduler(job_type, repeat, data, key, user_id, owner)

    async def schedule_every_job(
        self,
        job_type: str,
        every: int | str,
        data: Any = None,
        key: str | None = None,
        user_id: int | None = None,
        *,
        owner: str | None = None,
    ) -> CronJob:
        """Create or update the job scheduler `key` (default: the job type) to run every
        `every`: milliseconds, or a whole number with a unit (`30s`, `5m`, `1h`).

        BullMQ's `every` schedulers (Node services create them too) run at fixed intervals
        rather than on a calendar; an upsert of the same key replaces its interval and data.
        """
        repeat = {"every": parse_interval(every)}
        return await self._upsert_scheduler(job_type, repeat, data, key, user_id, owner)

    async def _upsert_scheduler(
        self,
        job_type: str,
        repeat: dict[str, Any],
        data: Any,
        key: str | None,
        user_id: int | None,
        owner: str | None,
    ) -> CronJob:
        payload = self._payload(job_type, data, user_id)[0]
        key = key or job_type
        if not isinstance(key, str) or ":" in key or not key.strip() or len(key) > MAX_JOB_ID_LENGTH:
            raise ValueError(
                f"schedule key must be 1..{MAX_JOB_ID_LENGTH} characters without ':', got {shown(key)}"
            )
        if owner is not None:
            payload["owner"] = owner
        await self.queue.upsertJobScheduler(key, repeat, job_type, payload, self.job_options(job_type))
        logger.info("scheduled %s as %r: %s", job_type, key, repeat)
        scheduled = await self.get_cron_job(key)
        assert scheduled is not None, "a scheduler just written must be readable"
        return scheduled

    async def remove_cron_job(self, key: str) -> bool:
        """Remove the job scheduler `key` and its pending run; True when there was one.

        bullmq's removeJobScheduler deletes the pending run only while it is delayed. A run
        already due (promoted to waiting or prioritized, not yet started) would still run, so it
        is removed here as well; a run that has started is left to finish.
        """
        if not await self.queue.isJobScheduler(key):
            return False
        next_ms = await self.queue.client.zscore(queue_key(REPEAT), key)
        await self.queue.removeJobScheduler(key)
        if next_ms is not None:
            pending = scheduler_job_id(key, int(next_ms))
            if await self.queue.getJobState(pending) in PENDING_STATES:
                # removeJob refuses an active (locked) job, should one start in between.
                await self.queue.remove(pending)
        logger.info("removed schedule %r", key)
        return True

    async def get_cron_job(self, key: str) -> CronJob | None:
        """The job scheduler `key`, or None when there is none."""
        if not await self.queue.isJobScheduler(key):
            return None  # bullmq 3.4.4's getJobScheduler raises for a missing key
        record = await self.queue.getJobScheduler(key)
        return _cron_job(record) if record else None

    async def list_cron_jobs(self) -> list[CronJob]:
        """Every job scheduler, soonest next run first."""
        return [_cron_job(record) for record in await self.queue.getJobSchedulers(asc=True)]

    async def get_health(self) -> QueueHealth:
        """Job counts per state, the paused flag, connected workers, live worker processes
        (from their heartbeats) and Redis health."""
        health = await redis_health(self.queue.client)
        if not health.ok:
            return QueueHealth(QUEUE_NAME, {}, False, 0, health, [f"Redis: {health.error}"])
        counts = await self.inspect.counts()
        paused = await self.inspect.is_paused()
        workers = len(await self.inspect.live_workers())
        processes = await self.inspect.worker_processes()
        warnings = list(health.warnings)
        if workers == 0:
            warnings.append("no worker is connected to the queue: jobs will wait")
        return QueueHealth(
            QUEUE_NAME,
            counts,
            paused,
            workers,
            health,
            warnings,
            processes,
        )

    async def wait_until_finished(self, job_id: str, timeout: float) -> dict[str, Any]:
        """Wait for job `job_id` to complete or fail; returns its state and result or reason.

        Listens to the queue's events first and only then reads the job's state, so a job that
        finishes in between is not missed. Raises TimeoutError after `timeout` seconds.
        """
        events = await self._queue_events()
        finished: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def settle(state: str) -> Any:
            def listener(args: dict[str, Any], _event_id: str) -> None:
                if not finished.done():
                    finished.set_result({"state": state, **args})

            return listener

        listeners = [(f"{state}:{job_id}", settle(state)) for state in ("completed", "failed")]
        for event, listener in listeners:
            events.on(event, listener)
        try:
            state = await self.queue.getJobState(job_id)
            if state == "unknown":
                raise LookupError(f"no job {job_id!r} in queue {QUEUE_NAME!r}")
            if state in ("completed", "failed"):
                return await self._finished(job_id, state)
            return await asyncio.wait_for(finished, timeout)
        finally:
            for event, listener in listeners:
                events.off(event, listener)

    async def _finished(self, job_id: str, state: str) -> dict[str, Any]:
        """The outcome of a finished job, read raw: a job whose data is not JSON still has one."""
        value, reason = await self.queue.client.hmget(job_key(job_id), "returnvalue", "failedReason")
        if state == "failed":
            return {"state": state, "jobId": job_id, "failedReason": reason}
        try:
            returned = json.loads(value) if value is not None else None
        except ValueError:
            returned = value
        return {"state": state, "jobId": job_id, "returnvalue": returned}

    async def _queue_events(self) -> QueueEvents:
        """One event consumer per manager, started on first use and shared by every wait."""
        if self._events is None:
            # Start from the stream's current end, fixed now, so nothing published after this
            # line is missed however late the consumer's first XREAD goes out.
            newest = await self.queue.client.xrevrange(queue_key(EVENTS), count=1)
            self._events = QueueEvents(
                QUEUE_NAME,
                {
                    "connection": self._settings.redis_url,
                    "autorun": False,
                    "lastEventId": newest[0][0] if newest else "0-0",
                    # close() waits out a blocking read: keep it short.
                    "blockingTimeout": EVENTS_BLOCK_MS,
                },
            )
            self._events_task = asyncio.create_task(self._events.run())
        return self._events

    async def pause(self) -> None:
        """Pause the queue: workers finish what they run and take nothing new."""
        await self.queue.pause()
        logger.info("queue paused")

    async def resume(self) -> None:
        await self.queue.resume()
        logger.info("queue resumed")

    async def retry_job(self, job_id: str) -> None:
        """Run a failed job again; its attempt counters are kept (one audit row per attempt)."""
        job = await self._readable(await self._job_in(job_id, "failed"))
        await job.retry("failed")
        logger.info("retried job %s", job_id)

    async def promote_job(self, job_id: str) -> None:
        """Run a delayed job now."""
        job = await self._readable(await self._job_in(job_id, "delayed"))
        await job.promote()
        logger.info("promoted job %s", job_id)

    async def remove_job(self, job_id: str) -> None:
        """Remove a job that no worker runs, whatever its hash holds (data that is not JSON,
        no name). An active job whose worker holds its lock is refused (JobStateError) by
        BullMQ's removeJob; one left active without a lock (its worker could not read it, or
        died) can be removed."""
        await self._job_in(job_id, *JOB_STATES, "waiting-children")
        if not await self.queue.remove(job_id):
            raise JobStateError(f"job {job_id!r} is running (a worker holds its lock): not removed")
        logger.info("removed job %s", job_id)

    async def retry_failed(self) -> int:
        """Run every failed job again; returns how many there were."""
        count = await self.inspect.count("failed")
        await self.queue.retryJobs({"state": "failed"})
        logger.info("retried %d failed jobs", count)
        return count

    async def clean(self, state: JobState, grace_ms: int, limit: int) -> int:
        """Remove up to `limit` (0: all) jobs of `state` older than `grace_ms`; returns how many."""
        # BullMQ's clean script calls the waiting list 'wait'.
        removed = await self.queue.clean(grace_ms, limit, "wait" if state == "waiting" else state)
        logger.info("cleaned %d %s jobs", len(removed), state)
        return len(removed)

    async def _job_in(self, job_id: str, *states: str) -> JobRecord:
        job = await self.inspect.job(job_id)
        if job is None:
            raise LookupError(f"no job {job_id!r}")
        state = await self.inspect.state(job_id)
        if state not in states:
            raise JobStateError(f"job {job_id!r} is {state}, not {' or '.join(states)}")
        return job

    async def _readable(self, record: JobRecord) -> Job:
        """bullmq's Job for `record`, which it can only build from a hash that parses."""
        if record.unreadable:
            raise JobStateError(
                f"job {record.id!r} cannot be read ({', '.join(record.unreadable)} not valid "
                "JSON): it can be removed, not run again"
            )
        job = await self.queue.getJob(record.id)
        if job is None:
            raise LookupError(f"no job {record.id!r}")
        return job

    async def close(self) -> None:
        if self._events is not None:
            await self._events.close()
            self._events = None
        await self._adder.close()
        await self.queue.close()


def check_job_id(job_id: object) -> str:
    """`job_id` as a job id a submitter may choose; raises ValueError otherwise.

    Not numeric (BullMQ numbers its own ids), without ':' and not the name of one of the
    queue's own keys (a job `meta` would overwrite the queue's settings hash).
    """
    if (
        not isinstance(job_id, str)
        or not 1 <= len(job_id) <= MAX_JOB_ID_LENGTH
        or ":" in job_id
        or job_id.isdigit()
        or not job_id.isprintable()
        or not names_a_job(job_id)
    ):
        raise ValueError(
            f"a job id must be 1..{MAX_JOB_ID_LENGTH} printable characters, not a number, without "
            f"':' and none of {', '.join(sorted(QUEUE_OWN_SUFFIXES))}; got {shown(job_id)}"
        )
    return job_id


def _cron_job(record: dict[str, Any]) -> CronJob:
    next_ms = record.get("next")
    every = record.get("every")
    raw = (record.get("template") or {}).get("data")
    try:
        payload = read_payload(raw)
        data, owner = payload.data, (raw or {}).get("owner")
    except PayloadFormError:
        data, owner = raw, None  # a Node service's scheduler in its own form: show what it holds
    return CronJob(
        key=record["key"],
        type=record.get("name") or "",
        pattern=record.get("pattern"),
        tz=record.get("tz"),
        next_run=datetime.fromtimestamp(int(next_ms) / 1000, UTC) if next_ms else None,
        data=data,
        owner=owner,
        every=int(every) if every else None,
    )
