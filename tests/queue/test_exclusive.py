"""The lock behind exclusive job types, against the real Redis."""

from __future__ import annotations

import asyncio

from quickdapp.app.server_app import ServerApp
from quickdapp.exclusive import exclusive_lock, lock_key


async def test_lock_is_held_once_and_released_at_the_end(app: ServerApp) -> None:
    async with exclusive_lock(app.redis, "t", 5_000) as first:
        async with exclusive_lock(app.redis, "t", 5_000) as second:
            assert (first, second) == (True, False)
        # The refused holder must not have released the lock it never had.
        assert await app.redis.exists(lock_key("t")) == 1
    assert await app.redis.exists(lock_key("t")) == 0
    async with exclusive_lock(app.redis, "t", 5_000) as again:
        assert again is True


async def test_lock_is_renewed_while_the_run_outlasts_its_ttl(app: ServerApp) -> None:
    async with exclusive_lock(app.redis, "slow", 300) as held:
        assert held
        await asyncio.sleep(1.0)  # more than three times the TTL
        async with exclusive_lock(app.redis, "slow", 300) as other:
            assert other is False
        assert 0 < await app.redis.pttl(lock_key("slow")) <= 300


async def test_lock_of_a_dead_holder_expires_and_is_not_released_by_others(app: ServerApp) -> None:
    # A holder that died: its token is in Redis, nobody renews it.
    await app.redis.set(lock_key("dead"), "their-token", px=300)
    async with exclusive_lock(app.redis, "dead", 5_000) as held:
        assert held is False
    assert await app.redis.get(lock_key("dead")) == "their-token"
    await asyncio.sleep(0.4)
    async with exclusive_lock(app.redis, "dead", 5_000) as held:
        assert held is True
