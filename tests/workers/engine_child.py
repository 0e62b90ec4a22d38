"""An engine in its own process, for the tests that kill it: `python -m tests.workers.engine_child URL`.

Its jobs never finish: each start is recorded in the Redis list `child:started`, then the job
sleeps until the process is killed.
"""

from __future__ import annotations

import asyncio
import sys

import uvloop

from quickdapp.broker.connection import Connection
from quickdapp.workers.engine import ActiveJob, Engine, Outcome


async def main(url: str) -> None:
    conn = Connection(url)

    async def hang(job: ActiveJob) -> Outcome:
        await conn.execute("RPUSH", "child:started", job.id)
        await asyncio.sleep(3600)
        return Outcome()

    engine = Engine(
        redis_url=url,
        name="doomed",
        concurrency=2,
        lock_duration_ms=500,
        stalled_interval_ms=300,
        process=hang,
    )
    await engine.start()
    await asyncio.sleep(3600)


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1]))
