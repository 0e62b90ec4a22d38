"""Redis connections: a client from a URL, connecting with back-off, and a health check."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from quickdapp.redaction import redact

logger = logging.getLogger(__name__)


def create_redis(url: str) -> aioredis.Redis:
    """A redis-py asyncio client for `url` (database index taken from the URL), decoding to str."""
    return aioredis.from_url(url, decode_responses=True, health_check_interval=30)


async def connect_redis(
    url: str, *, attempts: int = 8, first_delay: float = 0.25, max_delay: float = 5.0
) -> aioredis.Redis:
    """Connect to `url`, retrying with exponential back-off; raises the last error when out of tries."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        client = create_redis(url)
        try:
            await client.ping()
            return client
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            await client.aclose()
            if attempt == attempts:
                raise RedisConnectionError(
                    f"Redis at {redact(url)} did not answer after {attempts} tries: {exc}"
                ) from exc
            logger.warning(
                "Redis at %s not reachable (try %d/%d): %s", redact(url), attempt, attempts, exc
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class RedisHealth:
    """What a health check reads off the server."""

    ok: bool
    version: str | None = None
    maxmemory_policy: str | None = None
    error: str | None = None

    @property
    def warnings(self) -> list[str]:
        if self.ok and self.maxmemory_policy != "noeviction":
            return [
                f"maxmemory-policy is {self.maxmemory_policy!r}: Redis may evict job keys; "
                "set it to 'noeviction'"
            ]
        return []


async def redis_health(client: aioredis.Redis) -> RedisHealth:
    """Ping the server and read its version and eviction policy; never raises."""
    try:
        await client.ping()
        # INFO rather than CONFIG GET: managed Redis services often disable CONFIG.
        info = await client.info()
    except Exception as exc:  # health reports the failure instead of raising
        return RedisHealth(ok=False, error=f"{type(exc).__name__}: {exc}")
    health = RedisHealth(
        ok=True,
        version=str(info.get("redis_version")),
        maxmemory_policy=str(info.get("maxmemory_policy")),
    )
    for warning in health.warnings:
        logger.warning("Redis: %s", warning)
    return health
