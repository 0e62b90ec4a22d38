"""Adding jobs over the auto-pipelined connection, as bullmq's `Queue.add` / `addBulk` would.

The broker's `QueueScripts.add_job` builds each call as bullmq does (the stored job is what
`Queue.add` stores); one pipelined `Connection` carries them: the adds of concurrent callers
share one socket without a round trip each, and a batch goes out as one MULTI/EXEC, so it is
added whole or not at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from quickdapp.broker.connection import BrokerConnectionError, Connection, ConnectionClosedError
from quickdapp.broker.scripts import QueueScripts, call, call_all
from quickdapp.keys import QUEUE_NAME

_T = TypeVar("_T")

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
        command = self._scripts.add_job(*job)
        return _job_id(await self._send([job], lambda conn: call(conn, command)))

    async def add_all(self, jobs: Sequence[NewJob]) -> list[str]:
        """Add `jobs` in one MULTI/EXEC (all or none); returns their ids in order."""
        commands = [self._scripts.add_job(*job) for job in jobs]
        replies = await self._send(jobs, lambda conn: call_all(conn, commands))
        return [_job_id(reply) for reply in replies]

    async def _send(self, jobs: Sequence[NewJob], send: Callable[[Connection], Awaitable[_T]]) -> _T:
        """`send` on the connection, and once more when the connection dropped under it (Redis
        restarted since the last add): the next command reconnects. Only for jobs that all
        carry their id: an add that went through before the drop then adds nothing again."""
        conn = await self._connection()
        try:
            return await send(conn)
        except ConnectionClosedError:
            raise
        except BrokerConnectionError:
            if not all(job.options.get("jobId") for job in jobs):
                raise
            return await send(conn)

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
