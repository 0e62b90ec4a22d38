"""ServerApp: the shared resources a process of the system works with, built once per process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from quickdapp.config import Settings
from quickdapp.jobs.registry import JobRegistry, default_registry
from quickdapp.queue.manager import QueueManager
from quickdapp.redis_client import connect_redis

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from quickdapp.chain.client import ChainClient
    from quickdapp.db.schema import Notification


class ServerApp:
    """Settings, Redis, the database, the job registry and the queue manager of one process;
    handlers reach them through `ctx.app`.

    The database engine is made on first use: a worker process whose jobs never touch SQL
    (the audit trail goes through Redis) never loads SQLAlchemy.
    """

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        registry: JobRegistry,
        queue_manager: QueueManager,
        chain: ChainClient | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.registry = registry
        self.queue_manager = queue_manager
        self.chain = chain  # set when a chain is configured (CHAIN_RPC_URL)
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @classmethod
    async def create(cls, settings: Settings, registry: JobRegistry | None = None) -> ServerApp:
        """Connect to Redis (with back-off); the caller closes the app."""
        redis = await connect_redis(settings.redis_url)
        registry = registry or default_registry(settings.extra_job_modules)
        chain = None
        if settings.chain_configured:
            # Imported only here: web3 costs a second and ~30 MB, and most commands need no chain.
            from quickdapp.chain.client import ChainClient

            chain = ChainClient.from_settings(settings)
        return cls(settings, redis, registry, QueueManager(settings, registry), chain)

    @property
    def engine(self) -> AsyncEngine:
        """The engine of DATABASE_URL (made on first use)."""
        if self._engine is None:
            from quickdapp.db.engine import create_engine

            self._engine = create_engine(self.settings.database_url)
        return self._engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Sessions of the engine (made on first use)."""
        if self._sessions is None:
            from quickdapp.db.engine import session_factory

            self._sessions = session_factory(self.engine)
        return self._sessions

    async def create_notification(self, user_id: int, data: dict[str, Any]) -> Notification:
        """Store a notification for `user_id`, then publish it on the `notifications` channel."""
        from quickdapp.db.notifications import (
            NewNotification,
            insert_notifications,
            publish_notifications,
        )

        async with self.sessions.begin() as session:
            [row] = await insert_notifications(session, [NewNotification(user_id, data)])
        await publish_notifications(self.redis, [row])
        return row

    async def close(self) -> None:
        if self.chain is not None:
            await self.chain.close()
        await self.queue_manager.close()
        await self.redis.aclose()
        if self._engine is not None:
            await self._engine.dispose()
