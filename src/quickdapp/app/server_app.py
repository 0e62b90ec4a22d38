"""ServerApp: the shared resources a process of the system works with, built once per process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from quickdapp.config import Settings
from quickdapp.db.engine import create_engine, session_factory
from quickdapp.db.notifications import NewNotification, insert_notifications, publish_notifications
from quickdapp.db.schema import Notification
from quickdapp.jobs.registry import JobRegistry, default_registry
from quickdapp.queue.manager import QueueManager
from quickdapp.redis_client import connect_redis

if TYPE_CHECKING:
    from quickdapp.chain.client import ChainClient


@dataclass
class ServerApp:
    """Settings, database, Redis, job registry and queue manager; handlers reach them via ctx.app."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis
    registry: JobRegistry
    queue_manager: QueueManager
    chain: ChainClient | None = None  # set when a chain is configured (CHAIN_RPC_URL)

    @classmethod
    async def create(cls, settings: Settings, registry: JobRegistry | None = None) -> ServerApp:
        """Connect to Redis (with back-off) and the database; the caller closes the app."""
        redis = await connect_redis(settings.redis_url)
        engine = create_engine(settings.database_url)
        registry = registry or default_registry(settings.extra_job_modules)
        chain = None
        if settings.chain_configured:
            # Imported only here: web3 costs a second and ~30 MB, and most commands need no chain.
            from quickdapp.chain.client import ChainClient

            chain = ChainClient.from_settings(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            redis=redis,
            registry=registry,
            queue_manager=QueueManager(settings, registry),
            chain=chain,
        )

    async def create_notification(self, user_id: int, data: dict[str, Any]) -> Notification:
        """Store a notification for `user_id`, then publish it on the `notifications` channel."""
        async with self.sessions.begin() as session:
            [row] = await insert_notifications(session, [NewNotification(user_id, data)])
        await publish_notifications(self.redis, [row])
        return row

    async def close(self) -> None:
        if self.chain is not None:
            await self.chain.close()
        await self.queue_manager.close()
        await self.redis.aclose()
        await self.engine.dispose()
