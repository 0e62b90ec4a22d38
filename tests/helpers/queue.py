"""Reading the queue's state in tests."""

from __future__ import annotations

from quickdapp.queue.manager import QueueManager


async def pending_counts(manager: QueueManager) -> dict[str, int]:
    """How many jobs wait, are due by priority, are delayed, or run."""
    counts = await manager.queue.getJobCounts("waiting", "prioritized", "delayed", "active")
    return {state: int(count) for state, count in counts.items()}
