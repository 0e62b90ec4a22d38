"""What a worker or server checks before it starts: a database at the latest migration, and a
Redis that will not evict job keys in production. Each refusal is one line saying what to do.

Run by the entry points (`quickdapp worker`, `workers`, `serve`, `dev`), once; the worker
processes a supervisor restarts do not check again, so a database outage never keeps the
supervisor from replacing a dead worker.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from quickdapp.config import Settings
from quickdapp.db.engine import create_engine
from quickdapp.db.migrate import current_revisions, head_revisions
from quickdapp.errors import StartupRefusedError
from quickdapp.redaction import describe, redact
from quickdapp.redis_client import create_redis, redis_health

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 10.0


async def preflight(settings: Settings) -> None:
    """Raise StartupRefusedError when the database or Redis is not fit to start on."""
    engine = create_engine(settings.database_url)
    redis = create_redis(settings.redis_url)
    try:
        await check_database(engine, settings.database_url)
        await check_redis(redis, settings)
    finally:
        await redis.aclose()
        await engine.dispose()


async def check_database(engine: AsyncEngine, url: str) -> None:
    """The database answers and is at the latest migration; jobs would fail on missing tables."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            current = await current_revisions(engine)
    except Exception as exc:  # any failure to read it is a refusal, said in one line
        raise StartupRefusedError(
            f"the database at {redact(url)} cannot be read ("
            f"{describe(exc, url)}): start it, or check DATABASE_URL"
        ) from None
    heads = head_revisions()
    if current != heads:
        at = ", ".join(sorted(current)) or "none"
        raise StartupRefusedError(
            f"the database at {redact(url)} is not at the latest migration (it is at {at}, the "
            f"latest is {', '.join(sorted(heads))}): run `quickdapp migrate`"
        )


async def check_redis(redis: aioredis.Redis, settings: Settings) -> None:
    """In production, a Redis that may evict keys (maxmemory-policy other than noeviction) is
    refused: an evicted key is a lost job. Elsewhere it is a warning (redis_health logs it)."""
    health = await redis_health(redis)
    if not health.ok:
        raise StartupRefusedError(
            f"Redis at {redact(settings.redis_url)} does not answer ({health.error}): start it, "
            "or check REDIS_URL"
        )
    if settings.app_env == "production" and health.maxmemory_policy != "noeviction":
        raise StartupRefusedError(
            f"Redis at {redact(settings.redis_url)} has maxmemory-policy "
            f"{health.maxmemory_policy!r}: an evicted key is a lost job; set it to 'noeviction' "
            "(required when APP_ENV is production)"
        )
