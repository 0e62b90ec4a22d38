"""Start-up refusals in one clear line: a database not at the latest migration (or not there at
all) for `worker`, `workers` and `serve`; in production, a Redis that may evict keys."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from quickdapp.config import Settings
from quickdapp.db.migrate import upgrade
from quickdapp.devtools.redis_manager import RedisManager, RedisUnavailableError
from tests.helpers.processes import QuickdappProcess, run_quickdapp
from tests.helpers.services import postgres_server, throwaway_database, unavailable
from tests.helpers.waiting import eventually

COMMANDS = ["worker", "workers", "serve"]
STRONG = "correct-horse-battery-staple"


def _settings(settings: Settings, tmp_path: Path, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={"metrics_dir": str(tmp_path / "metrics"), "log_level": "INFO", **overrides}
    )


def _refused(settings: Settings, command: str) -> str:
    """Run `quickdapp COMMAND`: it must exit 2 at once with one line on stderr; returns it."""
    began = time.monotonic()
    done = run_quickdapp(settings, command)
    lines = [line for line in done.stderr.splitlines() if " WARNING " not in line]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("quickdapp: "), done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - began < 30
    return lines[0]


async def _starts(settings: Settings, command: str, log: Path) -> str:
    """Run `quickdapp COMMAND` until its worker processes jobs; it must stop cleanly on SIGTERM."""
    with QuickdappProcess(settings, command, log_path=log) as process:

        async def processing() -> bool:
            assert process.returncode is None, process.log()
            return "processing 'jobs'" in process.log()

        await eventually(processing, 30, lambda: f"the worker to start: {process.log()}")
        code = process.stop()
    assert code == 0, process.log()
    return process.log()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_database_never_migrated_is_refused(settings: Settings, tmp_path: Path, command: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/fresh.sqlite3"
    line = _refused(_settings(settings, tmp_path, database_url=url), command)
    assert "is not at the latest migration (it is at none" in line
    assert line.endswith("run `quickdapp migrate`")


def test_a_database_one_migration_behind_is_refused_then_starts_once_migrated(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    with (
        postgres_server(tmp_path_factory.mktemp("postgres")) as server_url,
        throwaway_database(server_url) as url,
    ):
        upgrade(url, "0001")
        behind = _settings(settings, tmp_path, database_url=url)
        line = _refused(behind, "worker")
        assert "(it is at 0001, the latest is" in line and "run `quickdapp migrate`" in line

        migrated = run_quickdapp(behind, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        # postgres_server runs its own event loop, so this test is synchronous.
        asyncio.run(_starts(behind, "worker", tmp_path / "worker.log"))


def test_a_database_that_does_not_answer_is_refused(settings: Settings, tmp_path: Path) -> None:
    url = "postgresql+asyncpg://quickdapp:s3cret-pw@127.0.0.1:1/nothing"
    line = _refused(_settings(settings, tmp_path, database_url=url), "worker")
    assert "cannot be read (ConnectionRefusedError" in line and "s3cret-pw" not in line


def test_migrate_against_a_database_that_does_not_answer_is_one_line(
    settings: Settings, tmp_path: Path
) -> None:
    url = "postgresql+asyncpg://quickdapp:s3cret-pw@127.0.0.1:1/nothing"
    line = _refused(_settings(settings, tmp_path, database_url=url), "migrate")
    assert "cannot be migrated" in line and "s3cret-pw" not in line


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def evicting_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis of its own (port 6400-6409) with maxmemory-policy allkeys-lru."""
    port = next((p for p in range(6400, 6410) if not _listening(p)), None)
    if port is None:
        unavailable("every port of 6400-6409 is taken")
    manager = RedisManager(f"redis://127.0.0.1:{port}/0", data_dir=tmp_path / "redis", reuse=False)
    try:
        manager.start()
    except RedisUnavailableError as exc:
        unavailable(f"a second Redis: {exc}")
    try:
        client = redis.Redis(port=manager.port)
        client.config_set("maxmemory-policy", "allkeys-lru")
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        manager.stop()


@pytest.mark.parametrize("command", COMMANDS)
def test_production_refuses_a_redis_that_may_evict(
    settings: Settings, tmp_path: Path, evicting_redis: str, command: str
) -> None:
    production = _settings(
        settings, tmp_path, redis_url=evicting_redis, app_env="production", admin_password=STRONG
    )
    line = _refused(production, command)
    assert "has maxmemory-policy 'allkeys-lru'" in line and "set it to 'noeviction'" in line


async def test_elsewhere_a_redis_that_may_evict_is_a_warning(
    settings: Settings, tmp_path: Path, evicting_redis: str
) -> None:
    elsewhere = _settings(settings, tmp_path, redis_url=evicting_redis, app_env="test")
    log = await _starts(elsewhere, "worker", tmp_path / "worker.log")
    assert "maxmemory-policy is 'allkeys-lru'" in log
