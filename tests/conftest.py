"""Test harness: its own Redis on 6380 and a throwaway PostgreSQL database per run.

Every test starts from an empty queue and empty tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings, load_settings
from quickdapp.db.migrate import upgrade
from quickdapp.db.schema import Base
from quickdapp.devtools.redis_manager import RedisManager, RedisUnavailableError
from quickdapp.jobs.registry import JobRegistry, default_registry
from quickdapp.workers.process import run_worker
from tests.helpers.paths import ROOT
from tests.helpers.processes import QuickdappProcess, StartQuickdapp
from tests.helpers.services import postgres_server, throwaway_database
from tests.helpers.workers import StartWorker

TEST_JOB_MODULE = "tests.helpers.jobs"
pytest_plugins = ["tests.helpers.chain"]


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Worker processes write their metrics files there, never into the checkout's .data/.
    metrics_dir = tmp_path_factory.mktemp("metrics")
    return load_settings(ROOT / ".env.test", job_modules=TEST_JOB_MODULE, metrics_dir=str(metrics_dir))


@pytest.fixture(scope="session")
def redis_manager(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisManager]:
    """The harness's own redis-server (never a Redis it did not start); stopped whatever happens."""
    manager = RedisManager(
        base_settings.redis_url, data_dir=tmp_path_factory.mktemp("redis"), reuse=False
    )
    try:
        manager.start()
    except RedisUnavailableError as exc:
        pytest.fail(f"test Redis: {exc}", pytrace=False)
    try:
        yield manager
    finally:
        manager.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_server(tmp_path_factory.mktemp("postgres")) as server_url:
        with throwaway_database(server_url) as url:
            upgrade(url)
            yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite database of this test (the development default)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'dev' / 'quickdapp.sqlite3'}"
    upgrade(url)  # also creates the folder, as `quickdapp dev` does on a fresh checkout
    return url


@pytest.fixture
def settings(base_settings: Settings, database_url: str, redis_manager: RedisManager) -> Settings:
    return base_settings.model_copy(update={"database_url": database_url})


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> None:
    """Empty the test Redis and every table before each test that uses the services."""
    if "settings" not in request.fixturenames:
        return
    settings: Settings = request.getfixturevalue("settings")
    client = redis.Redis.from_url(settings.redis_url)
    try:
        client.flushdb()  # Redis keeps its default hz 10: delayed jobs must not depend on it
    finally:
        client.close()
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    asyncio.run(_execute(settings.database_url, f"TRUNCATE {tables} RESTART IDENTITY"))


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def registry(base_settings: Settings) -> JobRegistry:
    return default_registry(base_settings.extra_job_modules)


@pytest.fixture
async def app(settings: Settings, registry: JobRegistry) -> AsyncIterator[ServerApp]:
    server_app = await ServerApp.create(settings, registry)
    try:
        yield server_app
    finally:
        await server_app.close()


@pytest.fixture
async def start_worker(settings: Settings, registry: JobRegistry) -> AsyncIterator[StartWorker]:
    """Start in-process workers (the code `quickdapp worker` runs); all are closed after the test."""
    running: list[tuple[asyncio.Event, asyncio.Task[bool], ServerApp]] = []

    async def start(**overrides: Any) -> ServerApp:
        worker_app = await ServerApp.create(settings.model_copy(update=overrides), registry)
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(run_worker(worker_app, stop, ready=ready))
        running.append((stop, task, worker_app))
        started = asyncio.create_task(ready.wait())
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if task.done():
            task.result()  # it failed to start: say why
        return worker_app

    yield start
    for stop, task, worker_app in running:
        stop.set()
        await asyncio.wait_for(task, 30)
        await worker_app.close()


@pytest.fixture
def start_quickdapp(settings: Settings, tmp_path: Path) -> Iterator[StartQuickdapp]:
    """Start `quickdapp ARGS...` (worker, workers, serve, dev) as real processes with the test's
    settings, or `base` settings, plus `overrides` (field names); all are stopped after the test.
    Logs in the test's tmp_path, named after the command."""
    started: list[QuickdappProcess] = []

    def start(
        *args: str, base: Settings | None = None, cwd: Path = ROOT, **overrides: Any
    ) -> QuickdappProcess:
        chosen = (base or settings).model_copy(update=overrides)
        log = tmp_path / f"{args[0]}-{len(started) + 1}.log"
        process = QuickdappProcess(chosen, *args, log_path=log, cwd=cwd)
        started.append(process)
        return process

    yield start
    for process in started:  # all at once: each may take its shutdown timeout
        process.terminate()
    for process in started:
        process.stop()
