"""The async engine and session factory for DATABASE_URL (PostgreSQL via asyncpg, or SQLite)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(url: str, *, pre_ping: bool = True) -> AsyncEngine:
    """An engine for `url`; for SQLite, creates the file's folder and turns on WAL and a busy wait.

    `pre_ping` (PostgreSQL) tests a pooled connection before each use, so a request after a
    database restart does not fail on a dead one; it costs a round trip per checkout. A
    caller that retries a failed transaction anyway (the audit writer) turns it off.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=pre_ping)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Several worker processes write the same file: WAL lets readers and one writer coexist.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded rows usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
