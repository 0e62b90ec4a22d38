"""`quickdapp` as a real process with exactly the test's settings: one environment, one way to
start a long-running command (`QuickdappProcess`) and one for a one-shot command (`run_quickdapp`).

Every setting comes from the environment (`--env-file` is /dev/null), so nothing of the
checkout's `.env` or of the calling shell (a REDIS_URL, a CHAIN_RPC_URL) leaks in.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from quickdapp.config import Settings
from tests.helpers.paths import ROOT

# What a child needs of this process's environment besides its settings.
PASSED_THROUGH = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL")


def settings_variables(settings: Settings) -> dict[str, str]:
    """Every setting that has a value, as environment variables (unset ones stay unset)."""
    return {
        name.upper(): str(value) for name, value in settings.model_dump().items() if value is not None
    }


def quickdapp_env(settings: Settings | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a `quickdapp` subprocess: `settings` as variables, PATH and a few
    basics of this process, PYTHONPATH (the test job modules import from any working folder),
    then `extra` (raw variables, e.g. a deliberately bad value)."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    if settings is not None:
        env |= settings_variables(settings)
    return env | {"PYTHONPATH": str(ROOT)} | dict(extra or {})


def quickdapp_command(*args: str) -> list[str]:
    """`quickdapp ARGS...` with no env file: every setting comes from the environment."""
    return [sys.executable, "-m", "quickdapp.cli", "--env-file", os.devnull, *args]


def run_quickdapp(
    settings: Settings | None,
    *args: str,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a one-shot `quickdapp ARGS...` (health, submit, ...) to the end; output captured."""
    return subprocess.run(
        quickdapp_command(*args),
        cwd=ROOT,
        env=quickdapp_env(settings, extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class QuickdappProcess:
    """A long-running `quickdapp ARGS...` (worker, workers, serve, dev) with `settings`.

    Its log (stderr) goes to `log_path`, its output (stdout) beside it with the suffix
    `.out`. `stop()` (also on leaving a `with` block) ends it: SIGTERM, then SIGKILL after a
    grace period; only this process, never by name.
    """

    def __init__(self, settings: Settings, *args: str, log_path: Path, cwd: Path = ROOT) -> None:
        self.settings = settings
        self.args = args
        self.log_path = log_path
        self.output_path = log_path.with_suffix(".out")
        with log_path.open("wb") as log, self.output_path.open("wb") as output:
            self.process = subprocess.Popen(
                quickdapp_command(*args),
                cwd=cwd,
                env=quickdapp_env(settings),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=log,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The exit code, or None while it runs."""
        return self.process.poll()

    def log(self) -> str:
        """Everything it logged so far (stderr)."""
        return self.log_path.read_text(errors="replace")

    def output(self) -> str:
        """Everything it printed so far (stdout)."""
        return self.output_path.read_text(errors="replace")

    def send_signal(self, signum: int = signal.SIGTERM) -> None:
        """Signal it, if it still runs."""
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """Its exit code; raises subprocess.TimeoutExpired after `timeout` seconds."""
        return self.process.wait(timeout)

    async def exited(self, timeout: float) -> int:
        """`wait` without blocking the event loop."""
        return await asyncio.to_thread(self.process.wait, timeout)

    def stop(self) -> int:
        """SIGTERM, and SIGKILL if it has not gone after its shutdown timeout and some room."""
        self.terminate()
        try:
            return self.process.wait(self.settings.worker_shutdown_timeout + 15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> QuickdappProcess:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<quickdapp {' '.join(self.args)} pid={self.pid} log={self.log_path}>"


StartQuickdapp = Callable[..., QuickdappProcess]
"""The `start_quickdapp` fixture: `start_quickdapp("workers", worker_count=2)`."""


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
