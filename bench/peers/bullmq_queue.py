"""The BullMQ `jobs` queue that this system, the stock Python Worker and Node BullMQ share.

Jobs go in as this system's QueueManager.submit_job adds them (validated data, the standard
options: one attempt, priority 20, completed jobs trimmed to 100, a uuid as id), whoever takes
them out, so the three BullMQ workers get the very same jobs. Held jobs wait in a paused queue,
filled by addBulk with those same payloads and options (submit_job adds one at a time: the fill
is not what is measured).
"""

from __future__ import annotations

import time
from typing import Any
from uuid import uuid4

from bench.peers.base import SLEEP_MS, Kind, Peer
from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.keys import QUEUE_KEY_PREFIX
from quickdapp.queue.payload import job_payload

FILL_BATCH = 1_000  # jobs per addBulk while filling
POLL = 0.002  # seconds between looks at the queue while waiting for it to empty
DELAYED_SCORE = 0x1000  # BullMQ's delayed score: due time (ms) x 0x1000 + a counter


def with_new_id(opts: dict[str, Any]) -> dict[str, Any]:
    """`opts` for one more job: its own uuid as id, as submit_job gives each job."""
    return {**opts, "jobId": uuid4().hex}


def job_data(kind: Kind) -> dict[str, Any]:
    return {"ms": SLEEP_MS} if kind == "sleep" else {}


class BullmqPeer(Peer):
    """A worker of the BullMQ queue at `settings.redis_url`; subclasses start the workers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.redis_url
        self._app: ServerApp | None = None

    @property
    def app(self) -> ServerApp:
        assert self._app is not None, "open() first"
        return self._app

    async def open(self) -> None:
        self._app = await ServerApp.create(self.settings)

    async def close(self) -> None:
        if self._app is not None:
            await self._app.close()

    async def reset(self) -> None:
        await self.app.redis.flushall()

    def redis_client(self) -> Any:
        return self.app.redis

    def job(self, kind: Kind) -> tuple[dict[str, Any], dict[str, Any]]:
        """The payload and options submit_job gives a job of `kind`, less its id (each adder
        makes its own, a uuid): what every BullMQ system is given to add or to run."""
        manager = self.app.queue_manager
        return job_payload(None, manager.job_data(kind, job_data(kind))), manager.job_options(kind)

    async def fill_held(self, kind: Kind, n: int) -> None:
        manager = self.app.queue_manager
        await manager.pause()
        payload, opts = self.job(kind)
        for start in range(0, n, FILL_BATCH):
            jobs = [
                {"name": kind, "data": payload, "opts": with_new_id(opts)}
                for _ in range(start, min(n, start + FILL_BATCH))
            ]
            await manager.queue.addBulk(jobs)

    async def release(self) -> None:
        await self.app.queue_manager.resume()

    async def add(self, kind: Kind, delay_ms: int = 0) -> str:
        return await self.app.queue_manager.submit_job(kind, job_data(kind), delay=delay_ms or None)

    async def finished(self, n: int) -> bool:
        """Nothing waiting, active or due (a delayed job not yet due does not count)."""
        due = int(time.time() * 1000) * DELAYED_SCORE + DELAYED_SCORE - 1
        pipe = self.app.redis.pipeline(transaction=False)
        for name in ("wait", "active", "paused"):
            pipe.llen(QUEUE_KEY_PREFIX + name)
        pipe.zcard(QUEUE_KEY_PREFIX + "prioritized")
        pipe.zcount(QUEUE_KEY_PREFIX + "delayed", 0, due)
        return not sum(await pipe.execute())
