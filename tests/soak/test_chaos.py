"""The chaos soak: mixed jobs through the real supervisor while worker processes are SIGKILLed,
Redis restarts and the database goes away; then every job is checked, one by one.

`make test` runs the short form (a few thousand jobs, a few kills, one Redis restart, one
database outage); `make soak` runs 100,000 jobs (SOAK_JOBS and the other SOAK_* variables below
set the size). Each run prints its report; with SOAK_REPORT=path it is also written as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select
from sqlalchemy.engine import make_url

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.db.schema import WorkerJob
from quickdapp.devtools.redis_manager import RedisManager
from quickdapp.keys import job_key
from tests.helpers.processes import StartQuickdapp
from tests.helpers.proxy import Proxy, proxy_to
from tests.helpers.soak_jobs import RUNS
from tests.helpers.waiting import audit_stored, eventually


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


JOBS = int(_env("SOAK_JOBS", 2_000))
SECONDS = _env("SOAK_SECONDS", 20)  # jobs arrive at a steady rate over this time
KILL_EVERY = _env("SOAK_KILL_EVERY", 4.0)  # seconds between SIGKILLs of a worker process
REDIS_RESTARTS = int(_env("SOAK_REDIS_RESTARTS", 1))
DB_OUTAGES = int(_env("SOAK_DB_OUTAGES", 1))
DB_OUTAGE_SECONDS = _env("SOAK_DB_OUTAGE_SECONDS", 3)
TIMEOUT = int(_env("SOAK_TIMEOUT", 240))

# Job kinds: (type, share of the jobs, data, final state, handler executions when undisturbed).
KINDS: tuple[tuple[str, float, dict[str, Any], str, int], ...] = (
    ("soakFast", 0.60, {}, "completed", 1),
    ("soakIO", 0.25, {"ms": 50}, "completed", 1),
    ("soakFailOnce", 0.10, {}, "completed", 2),
    ("soakAlwaysFail", 0.05, {}, "failed", 2),
)


@dataclass
class Report:
    jobs: int = 0
    seconds: float = 0.0
    kills: int = 0
    redis_restarts: int = 0
    db_outages: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    wrong_state: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    audit_mismatch: list[str] = field(default_factory=list)
    stalled_attempts: int = 0
    duplicate_executions: int = 0
    audit_rows: int = 0


@pytest.mark.timeout(TIMEOUT + 120)
async def test_chaos_soak_loses_nothing(
    settings: Settings, start_quickdapp: StartQuickdapp, redis_manager: RedisManager
) -> None:
    database = make_url(settings.database_url)
    async with proxy_to(database.port or 5432) as proxy:
        soak_settings = settings.model_copy(
            update={
                "database_url": database.set(port=proxy.port).render_as_string(hide_password=False),
                "job_modules": f"{settings.job_modules},tests.helpers.soak_jobs",
                "worker_count": 2,
                "worker_queue_concurrency": 50,
                # Killed workers' jobs come back within seconds; kills never fail a job.
                "worker_queue_lock_duration": 4_000,
                "worker_queue_stalled_interval": 2_000,
                "worker_queue_max_stalled_count": 1_000,
                "worker_shutdown_timeout": 5,
                "log_level": "WARNING",
            }
        )
        app = await ServerApp.create(soak_settings)
        try:
            report = await _soak(app, start_quickdapp, redis_manager, proxy)
        finally:
            await app.close()
    print("\nchaos soak:", json.dumps(asdict(report) | _samples(report), indent=2))
    if path := os.environ.get("SOAK_REPORT"):
        await asyncio.to_thread(Path(path).write_text, json.dumps(asdict(report), indent=2))
    assert report.lost == [], "jobs lost"
    assert report.wrong_state == [], "jobs in a state their kind does not dictate"
    assert report.audit_mismatch == [], "BullMQ and the audit trail disagree"
    assert report.kills > 0 and report.redis_restarts == REDIS_RESTARTS
    assert report.db_outages == DB_OUTAGES


async def _soak(
    app: ServerApp, start_quickdapp: StartQuickdapp, redis_manager: RedisManager, proxy: Proxy
) -> Report:
    report = Report(jobs=JOBS)
    supervisor = start_quickdapp("workers", **app.settings.model_dump(include=_SOAK_FIELDS))
    await eventually(_workers_ready(app, 2), 60, "two worker processes")
    kinds = _kinds(JOBS)
    began = time.monotonic()
    chaos = asyncio.create_task(_chaos(app, supervisor.pid, redis_manager, proxy, report))
    await _submit(app, kinds)
    await _all_finished(app, JOBS, began)
    chaos.cancel()
    await asyncio.gather(chaos, return_exceptions=True)
    report.seconds = round(time.monotonic() - began, 1)
    await eventually(_redis_answers(app), 30, "Redis to answer this process again")
    await audit_stored(app.redis, timeout=60)
    await _check(app, kinds, report)
    return report


_SOAK_FIELDS = {
    "database_url",
    "job_modules",
    "worker_count",
    "worker_queue_concurrency",
    "worker_queue_lock_duration",
    "worker_queue_stalled_interval",
    "worker_queue_max_stalled_count",
    "worker_shutdown_timeout",
    "log_level",
}


def _kinds(count: int) -> dict[str, tuple[str, dict[str, Any], str, int]]:
    """job id -> its kind, shuffled with a fixed seed (the same mix every run)."""
    rng = random.Random(7)
    plan = []
    for name, share, data, state, runs in KINDS:
        plan += [(name, data, state, runs)] * round(count * share)
    plan = (plan + [plan[0]] * count)[:count]
    rng.shuffle(plan)
    return {f"soak-{number}": kind for number, kind in enumerate(plan)}


def _redis_answers(app: ServerApp) -> Any:
    async def probe() -> bool:
        try:
            return bool(await app.redis.ping())
        except (RedisConnectionError, ConnectionError, OSError):
            return False  # a pooled connection from before the restart: the next one is new

    return probe


def _workers_ready(app: ServerApp, count: int) -> Any:
    async def probe() -> bool:
        return len(await app.queue_manager.inspect.worker_processes()) >= count

    return probe


async def _submit(app: ServerApp, kinds: dict[str, tuple[str, dict[str, Any], str, int]]) -> None:
    """Submit at a steady rate over SECONDS, retrying through outages: a fixed job id makes a
    retried submission idempotent, as a real client's would be."""
    interval = SECONDS / max(len(kinds), 1)
    start = time.monotonic()
    for number, (job_id, (name, data, _, _)) in enumerate(kinds.items()):
        while True:
            try:
                await app.queue_manager.submit_job(name, data, job_id=job_id)
                break
            except (RedisConnectionError, ConnectionError, OSError):
                await asyncio.sleep(0.2)
        ahead = start + number * interval - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)


async def _chaos(
    app: ServerApp, supervisor_pid: int, redis: RedisManager, proxy: Proxy, report: Report
) -> None:
    """SIGKILL a worker process every KILL_EVERY seconds; restart Redis and cut the database
    at points spread over the run."""
    rng = random.Random(11)
    events = [(SECONDS * (i + 1) / (REDIS_RESTARTS + 1), "redis") for i in range(REDIS_RESTARTS)]
    events += [(SECONDS * (i + 0.5) / max(DB_OUTAGES, 1), "db") for i in range(DB_OUTAGES)]
    events.sort()
    began = time.monotonic()
    next_kill = began + KILL_EVERY
    while True:
        now = time.monotonic()
        if events and now - began >= events[0][0]:
            _, what = events.pop(0)
            if what == "redis":
                redis.stop()
                await asyncio.sleep(2)
                redis.start()
                report.redis_restarts += 1
            else:
                await proxy.cut()
                await asyncio.sleep(DB_OUTAGE_SECONDS)
                await proxy.restore()
                report.db_outages += 1
        if now >= next_kill:
            children = _children(supervisor_pid)
            if children:
                os.kill(rng.choice(children), signal.SIGKILL)
                report.kills += 1
            next_kill = now + KILL_EVERY * rng.uniform(0.5, 1.5)
        await asyncio.sleep(0.1)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(child) for child in text.split()]


async def _all_finished(app: ServerApp, count: int, began: float) -> None:
    async def finished() -> bool:
        try:
            counts = await app.queue_manager.inspect.counts()
        except (RedisConnectionError, ConnectionError, OSError):
            return False
        return counts["completed"] + counts["failed"] >= count

    await eventually(finished, TIMEOUT - (time.monotonic() - began), f"{count} jobs to finish", 0.5)


async def _check(
    app: ServerApp, kinds: dict[str, tuple[str, dict[str, Any], str, int]], report: Report
) -> None:
    """Job by job: final state as its kind dictates, one audit row per started attempt (no gap,
    the last one saying what BullMQ says), duplicate executions counted."""
    ids = list(kinds)
    fields: dict[str, list[Any]] = {}
    async with app.redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(job_key(job_id), "finishedOn", "ats", "failedReason", "returnvalue")
            pipe.zscore("bull:jobs:completed", job_id)
        replies = await pipe.execute()
    for index, job_id in enumerate(ids):
        fields[job_id] = [*replies[2 * index], replies[2 * index + 1] is not None]
    runs = {k: int(v) for k, v in (await app.redis.hgetall(RUNS)).items()}
    rows: dict[str, list[tuple[int, str, str | None]]] = defaultdict(list)
    async with app.sessions() as session:
        result = await session.execute(
            select(WorkerJob.job_id, WorkerJob.attempt, WorkerJob.status, WorkerJob.error)
        )
        for job_id, attempt, status, error in result:
            rows[job_id].append((attempt, status, error))
    report.audit_rows = sum(len(attempts) for attempts in rows.values())
    states: Counter[str] = Counter()
    for job_id, (_name, _data, expected, expected_runs) in kinds.items():
        finished_on, started, reason, _value, completed = fields[job_id]
        if not finished_on:
            report.lost.append(job_id)
            continue
        state = "completed" if completed else "failed"
        states[state] += 1
        if state != expected:
            report.wrong_state.append(f"{job_id}: {state} ({reason})")
        attempts = sorted(rows.get(job_id, []))
        numbers = [attempt for attempt, _, _ in attempts]
        if numbers != list(range(1, int(started or 0) + 1)) or attempts[-1][1] != state:
            report.audit_mismatch.append(f"{job_id}: ats={started} {state}, rows {attempts}")
        report.stalled_attempts += sum("stalled" in (error or "") for _, _, error in attempts)
        report.duplicate_executions += max(0, runs.get(job_id, 0) - expected_runs)
    report.by_state = dict(states)


def _samples(report: Report) -> dict[str, Any]:
    """The first few problems of each kind, for the printed report."""
    return {
        "lost_first": report.lost[:5],
        "wrong_state_first": report.wrong_state[:5],
        "audit_mismatch_first": report.audit_mismatch[:5],
    }
