"""Waiting in tests for something another process or Redis will make true."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    timeout: float,
    what: str | Callable[[], str],
    interval: float = 0.05,
) -> T:
    """Await `probe` until it returns something truthy, and return that; fail naming `what`
    after `timeout` seconds. `what` may be a function, called only then (e.g. to show a
    process's log as it is at the end)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out after {timeout}s waiting for {described}")
        await asyncio.sleep(interval)


async def audit_stored(redis: Any, timeout: float = 10.0) -> None:
    """Wait until the audit writer has stored every ended attempt so far.

    Attempts reach `worker_jobs` through a Redis stream that the writer empties after each
    commit, so an empty stream means every row written until now is in the table.
    """
    from quickdapp.keys import AUDIT_STREAM

    async def empty() -> bool:
        return int(await redis.xlen(AUDIT_STREAM)) == 0

    await eventually(empty, timeout, "the audit writer to store every attempt")


async def listening(port: int, host: str = "127.0.0.1") -> bool:
    """True once something accepts TCP connections on `host:port`."""
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True
