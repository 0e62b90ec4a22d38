"""Exclusive job types: at most one run of such a type at a time, across every worker process.

A BullMQ job scheduler materialises its next run when the current one starts, so a run that
outlasts the period overlaps the next one. A type declared `exclusive=True` takes a Redis lock
(`SET NX PX` with a token) for the length of each run; a run that finds the lock taken is not
started and completes at once with a result saying it was skipped (audited as completed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from uuid import uuid4

import redis.asyncio as aioredis

from quickdapp.attempts import Attempt, AttemptHook, JobExecution, Skip
from quickdapp.keys import exclusive_lock_key

logger = logging.getLogger(__name__)

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


@dataclass
class _Held:
    key: str
    token: str
    renewer: asyncio.Task[None]


class ExclusiveLock(AttemptHook):
    """Skips an attempt of an exclusive type while another run of that type holds its lock.

    The lock expires `ttl_ms` after its last renewal, so a process that dies frees it in at
    most that time; while the run goes on it is renewed every third of `ttl_ms`.
    """

    def __init__(self, client: aioredis.Redis, exclusive_types: Collection[str], ttl_ms: int) -> None:
        self._client = client
        self._types = frozenset(exclusive_types)
        self._ttl_ms = ttl_ms
        self._held: dict[tuple[str, int], _Held] = {}

    async def before(self, attempt: Attempt) -> Skip | None:
        if attempt.type not in self._types:
            return None
        key, token = exclusive_lock_key(attempt.type), uuid4().hex
        if not await self._client.set(key, token, nx=True, px=self._ttl_ms):
            logger.info("%s job %s skipped: a previous run is still going", attempt.type, attempt.job_id)
            return Skip({"skipped": True, "reason": f"a previous {attempt.type} run is still going"})
        renewer = asyncio.create_task(self._renew(key, token), name=f"renew {key}")
        self._held[(attempt.job_id, attempt.number)] = _Held(key, token, renewer)
        return None

    async def after(self, execution: JobExecution, recorded: bool) -> None:
        held = self._held.pop((execution.job_id, execution.attempt), None)
        if held is None:
            return
        held.renewer.cancel()
        await asyncio.wait({held.renewer})
        try:
            await self._client.eval(_RELEASE, 1, held.key, held.token)
        except Exception:
            # It expires by itself within ttl_ms; the next run is only skipped until then.
            logger.exception("could not release lock %s", held.key)

    async def _renew(self, key: str, token: str) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                renewed = await self._client.eval(_RENEW, 1, key, token, self._ttl_ms)
            except Exception as exc:
                logger.warning("could not renew lock %s: %s", key, exc)
                continue
            if not renewed:
                logger.warning("lock %s was lost: another run of this type may start", key)
                return
