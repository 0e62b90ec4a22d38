"""Run `quickdapp workers` as a real process with the test's settings, and watch what it does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TypeVar

from quickdapp.config import Settings
from quickdapp.queue.inspection import WorkerProcessInfo
from quickdapp.queue.manager import QueueManager
from tests.helpers.paths import ROOT
from tests.helpers.processes import settings_env
from tests.helpers.waiting import eventually

T = TypeVar("T")


def settings_environment(settings: Settings) -> dict[str, str]:
    """This process's environment with exactly `settings` for a `quickdapp` child."""
    return {**os.environ, **settings_env(settings)}


class SupervisorProcess:
    """`quickdapp workers` started with `settings`; its log goes to `log_path`."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "quickdapp.cli", "--env-file", os.devnull, "workers"],
            env=settings_environment(settings),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL if it does not go (only this process, never by name)."""
        self.terminate()
        try:
            self.process.wait(self.settings.worker_shutdown_timeout + 15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


async def live_processes(
    manager: QueueManager,
    count: int,
    timeout: float = 60,
    *,
    exclude: set[int] = frozenset(),  # type: ignore[assignment]
) -> list[WorkerProcessInfo]:
    """Wait until `count` worker processes beat (none of them in `exclude`); returns them."""

    async def probe() -> list[WorkerProcessInfo] | None:
        processes = (await manager.get_health()).processes
        fresh = [p for p in processes if p.pid not in exclude]
        return fresh if len(fresh) >= count else None

    return await eventually(probe, timeout, f"{count} live worker processes")


def alive(pid: int) -> bool:
    """True while `pid` is a running (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
