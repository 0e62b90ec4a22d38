"""What every compared system offers the workloads (bench/workloads.py)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any, Literal

from bench.redis_server import command_times, redis_cpu_s
from bench.workers import Workers

Kind = Literal["echo", "sleep", "stamp"]
"""echo: a no-op; sleep: waits 50 ms on I/O; stamp: a no-op that notes when it started."""
SLEEP_MS = 50
EnqueueMode = Literal["one", "bulk"]


def now_ms() -> float:
    return time.time() * 1000


class Peer(ABC):
    """One system: its workers, its queue, and how a job gets into it."""

    name: str  # as the tables show it
    enqueues = True  # whether its enqueue is measured
    slow = False  # drains fewer jobs (Sizes.drain_slow) so that a run stays within its time

    @abstractmethod
    async def open(self) -> None:
        """Connect; called once before any workload."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect; called once at the end, even after an error."""

    @abstractmethod
    async def reset(self) -> None:
        """An empty queue (and audit trail) before a measurement."""

    @abstractmethod
    async def start(self, workers: Workers, processes: int, concurrency: int) -> None:
        """Start `processes` worker processes of `concurrency` each in `workers`; return once
        all are ready to take jobs."""

    @abstractmethod
    async def fill_held(self, kind: Kind, n: int) -> None:
        """Enqueue `n` jobs that no worker may take before `release`."""

    @abstractmethod
    async def release(self) -> None:
        """Let the workers take the held jobs, all at once."""

    @abstractmethod
    async def finished(self, n: int) -> bool:
        """Whether all `n` jobs since `reset` are done (and, with an audit trail, recorded)."""

    @abstractmethod
    async def add(self, kind: Kind, delay_ms: int = 0) -> str:
        """Enqueue one job now (after `delay_ms`); returns the key its start is noted under."""

    def redis_client(self) -> Any | None:
        """Its redis-py client on the run's Redis; None for a system without Redis."""
        return None

    async def redis_cpu_s(self) -> float | None:
        """CPU seconds its Redis has used so far; None for a system without Redis."""
        client = self.redis_client()
        return None if client is None else await redis_cpu_s(client)

    async def redis_command_times(self, *, reset: bool) -> dict[str, tuple[int, int]] | None:
        """Its Redis's time per command (redis_server.command_times); None without Redis."""
        client = self.redis_client()
        return None if client is None else await command_times(client, reset=reset)

    async def recorded(self) -> int | None:
        """Audit rows stored since `reset`; None without an audit trail."""
        return None

    async def enqueue(self, mode: EnqueueMode, n: int) -> float:
        """Enqueue `n` no-op jobs one by one or in bulk; jobs per second."""
        raise NotImplementedError
