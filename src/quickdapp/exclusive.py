"""Exclusive job types: at most one run of such a type at a time, across every worker process.

A BullMQ job scheduler materialises its next run when the current one starts, so a run that
outlasts the period overlaps the next one. A type declared `exclusive=True` takes a Redis lock
(`SET NX PX` with a token) for the length of each run; a run that finds the lock taken is not
started and completes at once with a result saying it was skipped (audited as completed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

import redis.asyncio as aioredis

from quickdapp.jobs.types import JobContext, JobDefinition

logger = logging.getLogger(__name__)

LOCK_PREFIX = "quickdapp:exclusive:"

# Renew or release only while the lock still holds our token: an expired lock taken by
# another run must not be extended or deleted by us.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lock_key(job_type: str) -> str:
    return LOCK_PREFIX + job_type


@asynccontextmanager
async def exclusive_lock(client: aioredis.Redis, name: str, ttl_ms: int) -> AsyncIterator[bool]:
    """Hold the lock `name` while the block runs; yields False (and holds nothing) if it is taken.

    The lock expires `ttl_ms` after its last renewal, so a process that dies frees it in at most
    that time; while the block runs it is renewed every third of `ttl_ms`.
    """
    key = lock_key(name)
    token = uuid4().hex
    if not await client.set(key, token, nx=True, px=ttl_ms):
        yield False
        return
    renewer = asyncio.create_task(_renew(client, key, token, ttl_ms), name=f"renew {key}")
    try:
        yield True
    finally:
        renewer.cancel()
        await asyncio.wait({renewer})
        try:
            await client.eval(_RELEASE, 1, key, token)
        except Exception:
            # It expires by itself within ttl_ms; the next run is only skipped until then.
            logger.exception("could not release lock %s", key)


async def _renew(client: aioredis.Redis, key: str, token: str, ttl_ms: int) -> None:
    while True:
        await asyncio.sleep(ttl_ms / 3000)
        try:
            renewed = await client.eval(_RENEW, 1, key, token, ttl_ms)
        except Exception as exc:
            logger.warning("could not renew lock %s: %s", key, exc)
            continue
        if not renewed:
            logger.warning("lock %s was lost: another run of this type may start", key)
            return


async def run_exclusive(
    client: aioredis.Redis, definition: JobDefinition[Any], context: JobContext[Any], ttl_ms: int
) -> Any:
    """Run `definition` for `context` unless another run of its type holds the lock."""
    async with exclusive_lock(client, definition.name, ttl_ms) as held:
        if not held:
            context.logger.info("skipped: a previous %s run is still going", definition.name)
            return {"skipped": True, "reason": f"a previous {definition.name} run is still going"}
        return await definition.run(context)
