"""The supervisor's restarts: a worker process that was serving jobs is replaced at once, however
often it is killed; back-off only for processes that die before they are ready."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable

import psutil

from quickdapp.app.server_app import ServerApp
from tests.helpers.processes import QuickdappProcess, StartQuickdapp
from tests.helpers.waiting import eventually
from tests.helpers.workers import live_processes

KILL_EVERY = 2.0
KILLS = 8


def _children(supervisor: QuickdappProcess) -> list[psutil.Process]:
    """The supervisor's worker processes that are alive now."""
    try:
        children = psutil.Process(supervisor.pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if _alive(c)]


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie; a child reaped between the listing and this look is not."""
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


async def test_a_process_that_was_serving_is_replaced_at_once(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    supervisor = start_quickdapp("workers", worker_count=1)
    (first,) = await live_processes(app.queue_manager, 1)
    await eventually(_said(supervisor, f"worker process {first.pid} (slot 1) ready"), 10, "ready")

    killed_at = time.monotonic()
    os.kill(first.pid, signal.SIGKILL)

    async def replaced() -> list[psutil.Process] | None:
        fresh = [c for c in _children(supervisor) if c.pid != first.pid]
        return fresh or None

    (second,) = await eventually(replaced, 5, "a new worker process")
    assert time.monotonic() - killed_at < 1.0, "the replacement waited"
    # Killed again while it starts: killed from outside says nothing of its start, no back-off.
    second.kill()

    async def third() -> list[psutil.Process] | None:
        return [c for c in _children(supervisor) if c.pid not in (first.pid, second.pid)] or None

    await eventually(third, 5, "a third worker process")
    assert re.search(
        rf"worker process {second.pid} \(slot 1 of 1\) was killed by signal SIGKILL after [\d.]+s "
        r"\(before it was ready\); restart 2 now",
        supervisor.log(),
    ), supervisor.log()
    assert re.search(
        rf"worker process {first.pid} \(slot 1 of 1\) was killed by signal SIGKILL "
        r"after [\d.]+s; restart 1 now",
        supervisor.log(),
    ), supervisor.log()
    # And it serves: a job submitted now runs.
    job_id = await app.queue_manager.submit_job("echo", {"value": 1})
    assert (await app.queue_manager.wait_until_finished(job_id, 15))["state"] == "completed"


async def test_repeated_kills_never_leave_the_queue_without_workers_for_long(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    """The issue's chaos: a worker SIGKILLed every ~2 s. Before, the delay doubled up to 32 s and
    both processes were down together for long stretches."""
    supervisor = start_quickdapp("workers", worker_count=2)
    await live_processes(app.queue_manager, 2)
    longest_without, since = 0.0, None
    kills = 0
    next_kill = time.monotonic()
    end = next_kill + KILL_EVERY * KILLS + 3
    while time.monotonic() < end:
        now = time.monotonic()
        children = _children(supervisor)
        if children:
            since = None
        else:
            since = since or now
            longest_without = max(longest_without, now - since)
        if kills < KILLS and now >= next_kill and children:
            children[kills % len(children)].kill()
            kills += 1
            next_kill = now + KILL_EVERY
        await asyncio.sleep(0.05)

    assert kills == KILLS
    assert longest_without < 0.5, f"no worker process at all for {longest_without:.1f}s"
    restarts = re.findall(r"restart \d+ (now|in [\d.]+s)$", supervisor.log(), re.M)
    assert len(restarts) >= KILLS and set(restarts) == {"now"}, restarts

    # Both serve again once the kills stop: the two children beat.
    async def both_beating() -> bool:
        beating = {p.pid for p in (await app.queue_manager.get_health()).processes}
        children = {c.pid for c in _children(supervisor)}
        return len(children) == 2 and children <= beating

    await eventually(both_beating, 30, "both worker processes beating")


async def test_a_process_that_dies_before_it_is_ready_backs_off(
    app: ServerApp, start_quickdapp: StartQuickdapp
) -> None:
    supervisor = start_quickdapp("workers", worker_count=1, job_modules="tests.helpers.no_such_module")

    async def two_deaths() -> list[str] | None:
        found = re.findall(r"\(before it was ready\); restart \d+ (in [\d.]+s)$", supervisor.log(), re.M)
        return found if len(found) >= 2 else None

    delays = await eventually(two_deaths, 60, "two deaths at start-up")
    assert delays[:2] == ["in 1.0s", "in 2.0s"]
    assert "ready after" not in supervisor.log()


def _said(supervisor: QuickdappProcess, text: str) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return text in supervisor.log()

    return probe
