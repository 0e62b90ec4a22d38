"""The worker processes of one system during one measurement: started, watched, stopped.

Every system's workers are OS processes started here; CPU is read with psutil over each process
tree (a supervisor and its children alike); job start times come from the stamp folder
(bench/stamps.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psutil

from bench.stamps import STAMP_DIR, read_starts

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class Workers:
    """A group of worker processes; `async with` kills whatever is still alive at the end."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="bench-stamps-")
        self.stamp_dir = Path(self._folder.name)
        self.env = {**os.environ, **(env or {}), STAMP_DIR: str(self.stamp_dir)}
        self.children: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Workers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for child in self.children:
            if child.returncode is None:
                for process in _tree(child.pid):
                    _kill(process)
                await child.wait()
        self._folder.cleanup()

    async def spawn(self, args: Sequence[str], *, ready_line: bool = True) -> asyncio.subprocess.Process:
        """Start one process from the repository's root; with `ready_line`, wait until it
        prints "ready" (else the caller finds out another way)."""
        child = await asyncio.create_subprocess_exec(
            *args,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if ready_line else subprocess.DEVNULL,
        )
        self.children.append(child)
        if ready_line:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), READY_TIMEOUT)
            if line.strip() != b"ready":
                raise RuntimeError(f"{args[:3]} did not start: {line!r}")
        return child

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far by every live process of the group."""
        return sum(_cpu(process) for process in self.processes())

    def starts(self) -> dict[str, float]:
        """Job key -> epoch ms its handler started, for every job noted so far."""
        return read_starts(self.stamp_dir)

    def processes(self) -> list[psutil.Process]:
        """Every live process of the group, children of children included."""
        return [process for child in self.children for process in _tree(child.pid)]

    def worker_pids(self) -> list[int]:
        """The processes that run jobs: children of a supervisor, else the processes started."""
        pids: list[int] = []
        for child in self.children:
            below = _tree(child.pid)[1:]
            pids += [p.pid for p in below] if below else [child.pid]
        return pids

    def rss_mb(self) -> list[float]:
        """Resident memory of each process that runs jobs, in MB (10^6 bytes)."""
        return [psutil.Process(pid).memory_info().rss / 1e6 for pid in self.worker_pids()]

    async def stop(self) -> None:
        """SIGTERM every process started here (a supervisor stops its own children), wait."""
        for child in self.children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                await asyncio.wait_for(child.wait(), STOP_TIMEOUT)
            except TimeoutError:
                for process in _tree(child.pid):
                    _kill(process)
                await child.wait()


def _tree(pid: int) -> list[psutil.Process]:
    try:
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def _kill(process: psutil.Process) -> None:
    try:
        process.kill()
    except psutil.NoSuchProcess:
        pass
