"""Adding jobs over the auto-pipelined connection, as bullmq's `Queue.add` / `addBulk` would.

The broker's `QueueScripts.add_job` builds each call as bullmq does (the stored job is what
`Queue.add` stores); one pipelined `Connection` carries them: the adds of concurrent callers
share one socket without a round trip each, and a batch goes out as one MULTI/EXEC, so it is
added whole or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from quickdapp.broker.connection import Connection
from quickdapp.broker.scripts import QueueScripts, call, call_all
from quickdapp.keys import QUEUE_NAME

CLIENT_NAME = "quickdapp:producer"
"""CLIENT SETNAME of the connection (not BullMQ's worker form: Node would list it as a worker)."""


class NewJob(NamedTuple):
    """One job to add, validated: its name (the job type), its data as JSON, its options."""

    name: str
    data_json: str
    options: dict[str, Any]


class JobAdder:
    """Adds jobs to the queue over one pipelined connection, opened on first use."""

    def __init__(self, redis_url: str) -> None:
        self._redis_url = redis_url
        self._scripts = QueueScripts(QUEUE_NAME)
        self._conn: Connection | None = None

    async def add(self, job: NewJob) -> str:
        """Add one job; returns its id (an existing job's id when BullMQ deduplicated it)."""
        return _job_id(await call(await self._connection(), self._scripts.add_job(*job)))

    async def add_all(self, jobs: Sequence[NewJob]) -> list[str]:
        """Add `jobs` in one MULTI/EXEC (all or none); returns their ids in order."""
        commands = [self._scripts.add_job(*job) for job in jobs]
        return [_job_id(reply) for reply in await call_all(await self._connection(), commands)]

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _connection(self) -> Connection:
        if self._conn is None:
            conn = Connection(self._redis_url, name=CLIENT_NAME)
            await self._scripts.load(conn)
            self._conn = conn
        return self._conn


def _job_id(reply: Any) -> str:
    if isinstance(reply, int) and reply < 0:
        raise RuntimeError(f"BullMQ refused to add the job (code {reply})")
    return str(reply)
