"""Live workers of the queue, from Redis CLIENT LIST, whichever BullMQ port runs them.

The two ports name a Worker's Redis connections differently, and each port's getWorkers
matches only its own form, so neither sees the other's workers. This reads CLIENT LIST
itself and counts both:

- Python bullmq: `<prefix>:<queue>` or `<prefix>:<queue>:w:<name>`, on both of a Worker's
  connections (commands and blocking pops): one worker per name, unnamed ones in pairs.
- Node BullMQ: `<prefix>:<base64(queue)>` or `<prefix>:<base64(queue)>:w:<name>`, on the
  blocking connection only: one worker per connection, as Node's getWorkers counts them.

Workers of this system are named uniquely (host:pid:suffix).
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PYTHON_CONNECTIONS_PER_WORKER = 2
UNNAMED = "(unnamed)"


@dataclass(frozen=True)
class LiveWorker:
    name: str
    addresses: list[str]
    age_seconds: int


def worker_client_names(prefix: str, queue_name: str) -> tuple[str, str]:
    """The client names of unnamed Workers of `queue_name`: Python bullmq's, Node BullMQ's.
    A named Worker's connections carry one of them followed by `:w:<name>`."""
    encoded = base64.b64encode(queue_name.encode()).decode("ascii")
    return f"{prefix}:{queue_name}", f"{prefix}:{encoded}"


async def live_workers(queue: Any) -> list[LiveWorker]:
    """The workers connected to `queue` now; [] when Redis does not answer CLIENT LIST."""
    try:
        clients = await queue.client.client_list()
    except Exception:  # the count is informative; a Redis without CLIENT LIST must not break pages
        return []
    return workers_from_clients(clients, queue.prefix, queue.name)


def workers_from_clients(
    clients: Iterable[Mapping[str, Any]], prefix: str, queue_name: str
) -> list[LiveWorker]:
    """The Workers of `queue_name` among `clients` (CLIENT LIST entries), sorted by name."""
    python_name, node_name = worker_client_names(prefix, queue_name)
    python_named: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    python_unnamed: list[Mapping[str, Any]] = []
    workers: list[LiveWorker] = []
    for client in clients:
        name = str(client.get("name") or "")
        if name == node_name:
            workers.append(_worker(UNNAMED, [client]))
        elif name.startswith(f"{node_name}:w:"):
            workers.append(_worker(name.removeprefix(f"{node_name}:w:"), [client]))
        elif name == python_name:
            python_unnamed.append(client)
        elif name.startswith(f"{python_name}:w:"):
            python_named[name.removeprefix(f"{python_name}:w:")].append(client)
    workers.extend(_worker(name, connections) for name, connections in python_named.items())
    # Unnamed Python workers are indistinguishable, so count them by their connections.
    for start in range(0, len(python_unnamed), PYTHON_CONNECTIONS_PER_WORKER):
        workers.append(_worker(UNNAMED, python_unnamed[start : start + PYTHON_CONNECTIONS_PER_WORKER]))
    return sorted(workers, key=lambda worker: (worker.name, worker.addresses))


def _worker(name: str, connections: list[Mapping[str, Any]]) -> LiveWorker:
    return LiveWorker(
        name=name,
        addresses=sorted({str(c.get("addr", "?")) for c in connections}),
        age_seconds=max(int(c.get("age", 0) or 0) for c in connections),
    )
