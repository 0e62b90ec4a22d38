"""A process that writes audit rows one batch of one at a time and times each write.

Run beside cleanupAuditLog by bench/audit_scale.py: its own process, event loop and
connection, so what it measures is the database, not the cleanup's share of an event loop.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from quickdapp.attempts import JobExecution
from quickdapp.audit.store import record_job_executions
from quickdapp.db.engine import create_engine, session_factory

PAUSE_S = 0.01  # ~100 attempts a second: a busy worker fleet's audit writes


def run_inserter(database_url: str, stop: Any, ready: Any, results: Any) -> None:
    """Insert until `stop` is set; put [(wall time, ms)] of every insert on `results`."""
    results.put(asyncio.run(_insert(database_url, stop, ready)))


async def _insert(database_url: str, stop: Any, ready: Any) -> list[tuple[float, float]]:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    samples: list[tuple[float, float]] = []
    try:
        for number in range(10**9):
            at = datetime.now(UTC)
            execution = JobExecution(
                f"bench-insert-{number}",
                1,
                "watchChain",
                None,
                {},
                "completed",
                at - timedelta(milliseconds=40),
                at,
                {"ok": True},
            )
            began = time.perf_counter()
            await record_job_executions(sessions, [execution])
            samples.append((time.time(), (time.perf_counter() - began) * 1000))
            if number == 20:
                ready.set()  # warm: connections open, statements prepared
            if stop.is_set():
                break
            await asyncio.sleep(PAUSE_S)
    finally:
        await engine.dispose()
    return samples
