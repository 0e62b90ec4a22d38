"""The audit writer: attempts move from the Redis stream into worker_jobs, none lost, none doubled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.app.server_app import ServerApp
from quickdapp.attempts import JobExecution
from quickdapp.audit import stream
from quickdapp.audit.writer import AuditWriter
from quickdapp.db.engine import create_engine, session_factory
from quickdapp.db.schema import WorkerJob
from quickdapp.keys import AUDIT_GROUP, AUDIT_STREAM
from tests.helpers.proxy import Proxy, proxy_to
from tests.helpers.waiting import audit_stored


def _execution(job_id: str, attempt: int = 1) -> JobExecution:
    now = datetime.now(UTC)
    return JobExecution(job_id, attempt, "echo", 7, {"n": 1}, "completed", now, now, result={"ok": 1})


async def _add(redis: Any, execution: JobExecution) -> None:
    """What the worker's finishing transaction adds to the stream for `execution`."""
    await redis.xadd(AUDIT_STREAM, {stream.FIELD: stream.encode(execution)})


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(WorkerJob)) or 0)


@pytest.fixture
async def writing(app: ServerApp) -> AsyncIterator[asyncio.Event]:
    """An audit writer running on the test's database until the test ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        AuditWriter(app.settings.redis_url, app.sessions, consumer="test").run(stop)
    )
    yield stop
    stop.set()
    await asyncio.wait_for(task, 15)


async def test_entries_become_rows_and_leave_the_stream(app: ServerApp, writing: asyncio.Event) -> None:
    for number in range(250):
        await _add(app.redis, _execution(f"job-{number}"))
    await audit_stored(app.redis)
    assert await _rows(app.sessions) == 250
    async with app.sessions() as session:
        row = (await session.scalars(select(WorkerJob).where(WorkerJob.job_id == "job-7"))).one()
    assert (row.user_id, row.data, row.result, row.status) == (7, {"n": 1}, {"ok": 1}, "completed")
    assert await app.redis.xpending(AUDIT_STREAM, AUDIT_GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_an_attempt_recorded_twice_is_one_row(app: ServerApp, writing: asyncio.Event) -> None:
    await _add(app.redis, _execution("twice"))
    await _add(app.redis, _execution("twice"))
    await _add(app.redis, _execution("twice", attempt=2))
    await audit_stored(app.redis)
    assert await _rows(app.sessions) == 2


async def test_an_entry_that_is_not_an_attempt_is_dropped_and_the_rest_stored(
    app: ServerApp, writing: asyncio.Event, caplog: pytest.LogCaptureFixture
) -> None:
    await _add(app.redis, _execution("before"))
    await app.redis.xadd(AUDIT_STREAM, {"e": "{not json"})
    await app.redis.xadd(AUDIT_STREAM, {"other": "field"})
    await app.redis.xadd(AUDIT_STREAM, {"e": '{"job_id":"half"}'})  # JSON, but not an attempt
    await _add(app.redis, _execution("after"))
    with caplog.at_level(logging.ERROR, logger="quickdapp.audit.writer"):
        await audit_stored(app.redis)
    assert await _rows(app.sessions) == 2
    assert sum("dropping audit stream entry" in r.message for r in caplog.records) == 3


async def test_a_row_the_database_refuses_is_dropped_and_the_rest_of_its_batch_stored(
    app: ServerApp, caplog: pytest.LogCaptureFixture
) -> None:
    # A lone surrogate (invalid UTF-8 a foreign producer stored, read with surrogateescape):
    # PostgreSQL refuses that row whatever is done, and it must not hold back the others.
    poison = replace(_execution("poison"), error="bad byte \udcff")
    for execution in (_execution("a"), _execution("b"), poison, _execution("c")):
        await _add(app.redis, execution)
    stop = asyncio.Event()
    writer = AuditWriter(app.settings.redis_url, app.sessions, consumer="refusing")
    with caplog.at_level(logging.ERROR, logger="quickdapp.audit.writer"):
        task = asyncio.create_task(writer.run(stop))
        try:
            await audit_stored(app.redis)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
    assert await _rows(app.sessions) == 3
    [dropped] = [r.message for r in caplog.records if "dropped" in r.message]
    assert "job poison attempt 1 dropped: the database refuses it" in dropped


async def test_a_batch_whose_every_row_is_refused_waits_in_redis(app: ServerApp) -> None:
    # Nothing of it can be stored: the cause is not one row, so nothing is dropped.
    for n in range(3):
        await _add(app.redis, replace(_execution(f"bad{n}"), error="\udcff"))
    stop = asyncio.Event()
    task = asyncio.create_task(AuditWriter(app.settings.redis_url, app.sessions, consumer="w").run(stop))
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.wait_for(task, 15)
    assert await app.redis.xlen(AUDIT_STREAM) == 3
    assert await _rows(app.sessions) == 0


async def test_rows_of_a_database_outage_all_land_after_it(app: ServerApp) -> None:
    url = make_url(app.settings.database_url)
    async with proxy_to(url.port or 5432) as proxy:
        # As the writer runs (workers/process.py): no pre-ping, a failed batch is retried.
        proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
        engine = create_engine(proxied, pre_ping=False)
        stop = asyncio.Event()
        writer = AuditWriter(app.settings.redis_url, session_factory(engine), consumer="outage")
        task = asyncio.create_task(writer.run(stop))
        try:
            await _outage(app, proxy)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            await engine.dispose()


async def _outage(app: ServerApp, proxy: Proxy) -> None:
    await _add(app.redis, _execution("before-outage"))
    await audit_stored(app.redis)
    await proxy.cut()
    for number in range(100):
        await _add(app.redis, _execution(f"during-{number}"))
    await asyncio.sleep(2.0)  # the outage: the writer keeps failing meanwhile
    assert await app.redis.xlen(AUDIT_STREAM) == 100, "entries wait in Redis while the database is away"
    assert await _rows(app.sessions) == 1
    await proxy.restore()
    await audit_stored(app.redis, timeout=20)
    assert await _rows(app.sessions) == 101


async def test_entries_of_a_writer_that_died_are_taken_over(app: ServerApp) -> None:
    await app.redis.xgroup_create(AUDIT_STREAM, AUDIT_GROUP, id="0", mkstream=True)
    for number in range(20):
        await _add(app.redis, _execution(f"orphan-{number}"))
    # The dead writer read them and never acknowledged them.
    await app.redis.xreadgroup(AUDIT_GROUP, "dead", {AUDIT_STREAM: ">"}, count=100)
    stop = asyncio.Event()
    heir = AuditWriter(app.settings.redis_url, app.sessions, consumer="heir", claim_idle_ms=200)
    task = asyncio.create_task(heir.run(stop))
    try:
        await audit_stored(app.redis)
        assert await _rows(app.sessions) == 20
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_a_writer_asked_to_stop_first_stores_what_is_in_the_stream(app: ServerApp) -> None:
    # As a worker closes: its last attempts are in the stream when the writer is told to stop.
    for number in range(1500):
        await _add(app.redis, _execution(f"last-{number}"))
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(
        AuditWriter(app.settings.redis_url, app.sessions, consumer="last").run(stop), 15
    )
    assert await _rows(app.sessions) == 1500
    assert await app.redis.xlen(AUDIT_STREAM) == 0
