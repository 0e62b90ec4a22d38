"""A command's connections, opened around its body and closed after it: a ServerApp (Redis and
the database), or the database alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.db.engine import create_engine, session_factory


def with_app(settings: Settings, body: Callable[[ServerApp], Awaitable[None]]) -> int:
    """Run `body` with a ServerApp of `settings`, closed afterwards; 0."""

    async def run() -> None:
        app = await ServerApp.create(settings)
        try:
            await body(app)
        finally:
            await app.close()

    asyncio.run(run())
    return 0


def with_database(
    settings: Settings, body: Callable[[async_sessionmaker[AsyncSession]], Awaitable[None]]
) -> int:
    """Run `body` with sessions on the database alone (no Redis needed); 0."""

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            await body(session_factory(engine))
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0
