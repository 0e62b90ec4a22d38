"""ServerApp: the shared resources a process of the system works with, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from quickdapp.config import Settings
from quickdapp.db.engine import create_engine, session_factory
from quickdapp.jobs.registry import JobRegistry, default_registry
from quickdapp.queue.manager import QueueManager
from quickdapp.queue.redis import connect_redis


@dataclass
class ServerApp:
    """Settings, database, Redis, job registry and queue manager; handlers reach them via ctx.app."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis
    registry: JobRegistry
    queue_manager: QueueManager

    @classmethod
    async def create(cls, settings: Settings, registry: JobRegistry | None = None) -> ServerApp:
        """Connect to Redis (with back-off) and the database; the caller closes the app."""
        redis = await connect_redis(settings.redis_url)
        engine = create_engine(settings.database_url)
        registry = registry or default_registry(settings.extra_job_modules)
        return cls(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            redis=redis,
            registry=registry,
            queue_manager=QueueManager(settings, registry),
        )

    async def close(self) -> None:
        await self.queue_manager.close()
        await self.redis.aclose()
        await self.engine.dispose()
