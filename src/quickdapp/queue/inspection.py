"""Live workers of the queue, one entry per Worker rather than per Redis connection.

A bullmq Worker holds two connections (commands and blocking pops) under one client name,
so CLIENT LIST shows each worker twice. Workers of this system are named uniquely
(host:pid:suffix); unnamed workers (other tools) share one name and are counted in pairs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

CONNECTIONS_PER_WORKER = 2


@dataclass(frozen=True)
class LiveWorker:
    name: str
    addresses: list[str]
    age_seconds: int


async def live_workers(queue: Any) -> list[LiveWorker]:
    """The workers connected to `queue` now (from Redis CLIENT LIST); [] if it is unsupported."""
    try:
        clients = await queue.get_workers()
    except Exception:  # the count is informative; a Redis without CLIENT LIST must not break pages
        return []
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for client in clients:
        if "rawname" in client:
            groups[str(client["rawname"])].append(client)
    workers = []
    for rawname, connections in sorted(groups.items()):
        _, marker, name = rawname.partition(":w:")
        if marker:
            workers.append(_worker(name, connections))
        else:
            # Unnamed workers: indistinguishable, so count them by their connections.
            for start in range(0, len(connections), CONNECTIONS_PER_WORKER):
                workers.append(_worker("(unnamed)", connections[start : start + CONNECTIONS_PER_WORKER]))
    return workers


def _worker(name: str, connections: list[dict[str, Any]]) -> LiveWorker:
    return LiveWorker(
        name=name,
        addresses=sorted({str(c.get("addr", "?")) for c in connections}),
        age_seconds=max(int(c.get("age", 0) or 0) for c in connections),
    )
