"""Watching workers from the outside: live worker processes, workers idle on Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Set

from redis.asyncio import Redis

from quickdapp.app.server_app import ServerApp
from quickdapp.queue.inspection import WorkerProcessInfo
from quickdapp.queue.manager import QueueManager
from tests.helpers.waiting import eventually

StartWorker = Callable[..., Awaitable[ServerApp]]
"""The `start_worker` fixture: an in-process worker with the test's settings plus overrides."""


async def live_processes(
    manager: QueueManager, count: int, timeout: float = 60, *, exclude: Set[int] = frozenset()
) -> list[WorkerProcessInfo]:
    """Wait until `count` worker processes beat (none of them in `exclude`); returns them."""

    async def probe() -> list[WorkerProcessInfo] | None:
        processes = (await manager.get_health()).processes
        fresh = [p for p in processes if p.pid not in exclude]
        return fresh if len(fresh) >= count else None

    return await eventually(probe, timeout, f"{count} live worker processes")


async def idle_on_redis(redis: Redis, count: int, timeout: float = 30) -> None:
    """Wait until `count` workers block on the queue's marker (BZPOPMIN): idle, so a job that
    arrives now is taken by push, not by a fetch that was already under way."""

    async def probe() -> bool:
        clients = await redis.client_list()
        blocked = [c for c in clients if c.get("cmd") == "bzpopmin" and "b" in c.get("flags", "")]
        return len(blocked) >= count

    await eventually(probe, timeout, f"{count} workers blocking on Redis")
