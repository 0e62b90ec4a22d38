"""A throwaway PostgreSQL database for a benchmark run.

The server at TEST_DATABASE_URL (the one the tests use) if it answers, else a private one
from the `pgserver` package; the database is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _execute(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(server_url, timeout=3)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def throwaway_postgres(work_dir: Path) -> Iterator[str]:
    """Yields the async URL of a new database; drops it (and any private server) afterwards."""
    server_url = os.environ.get("TEST_DATABASE_URL", DEFAULT_SERVER_URL)
    server_url = server_url.replace("postgresql+asyncpg://", "postgresql://")
    server = None
    try:
        asyncio.run(_execute(server_url, "SELECT 1"))
    except (TimeoutError, OSError, asyncpg.PostgresError):
        from pgserver.postgres_server import get_server

        server = get_server(work_dir / "pgdata", cleanup_mode="delete")
        server_url = server.get_uri()
    name = f"quickdapp_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(server_url, f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server_url).set(drivername="postgresql+asyncpg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        asyncio.run(_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if server is not None:
            server.cleanup()
