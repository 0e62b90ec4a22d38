"""Real services for the test run: the harness's own Redis and a throwaway PostgreSQL database.

A service that cannot be had is a loud skip on a laptop and a failure when CI is set.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def unavailable(message: str) -> None:
    """Skip loudly here; fail in CI, where every service must be present."""
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(f"SERVICE MISSING: {message}")


async def _answers(url: str) -> bool:
    try:
        connection = await asyncpg.connect(url, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


@contextmanager
def postgres_server(work_dir: Path) -> Iterator[str]:
    """The PostgreSQL server at TEST_DATABASE_URL, or a private pgserver one when CI is unset."""
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    url = url.replace("postgresql+asyncpg://", "postgresql://")
    if asyncio.run(_answers(url)):
        yield url
        return
    if os.environ.get("CI"):
        pytest.fail(f"no PostgreSQL answers at {url} (TEST_DATABASE_URL)", pytrace=False)
    from pgserver.postgres_server import get_server  # embedded fallback without PostgreSQL

    server = get_server(work_dir / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """Create a database for this run on `server_url`; drop it afterwards. Yields its async URL."""
    name = f"quickdapp_test_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(server_url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server_url).set(drivername="postgresql+asyncpg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
