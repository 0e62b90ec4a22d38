"""The lifecycle every local service of dev and tests shares (Redis, anvil): reuse one that
answers at the URL, or start one there, and stop only what was started here."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Self
from urllib.parse import urlsplit

from quickdapp.errors import ServiceUnavailableError
from quickdapp.signals import own_group_dying_with_parent

logger = logging.getLogger(__name__)

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class LocalService:
    """A service at `url`: `start()` reuses one that answers (if `reuse`) or starts one on the
    URL's port; `stop()` ends only a process `start()` began. Subclasses say how to ask
    whether it answers, where its binary is and how to start it."""

    kind: ClassVar[str]  # "Redis", "chain node": for messages
    setting: ClassVar[str]  # the setting that holds the URL, for messages
    default_port: ClassVar[int]
    error: ClassVar[type[ServiceUnavailableError]] = ServiceUnavailableError

    def __init__(self, url: str, *, reuse: bool = True) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or self.default_port
        self.reuse = reuse
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bind_host(self) -> str:
        return "127.0.0.1" if self.host == "localhost" else self.host

    @property
    def started_here(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def answers(self) -> bool:
        raise NotImplementedError

    def find_binary(self) -> str | None:
        raise NotImplementedError

    def install_hint(self) -> str:
        raise NotImplementedError

    def command(self, binary: str) -> list[str]:
        raise NotImplementedError

    def output(self) -> IO[bytes] | int:
        """Where the child's stdout and stderr go."""
        return subprocess.DEVNULL

    def exit_detail(self) -> str:
        """What the child left behind when it exited at start-up, for the error."""
        return ""

    def start(self, timeout: float = 15.0) -> None:
        """Reuse an answering service (if `reuse`), else start one on the URL's port."""
        if self.started_here:
            return
        if self.answers():
            if self.reuse:
                logger.info("using the %s already answering at %s:%d", self.kind, self.host, self.port)
                return
            raise self.error(
                f"port {self.port} on {self.host} is already taken by another process; this "
                f"needs a {self.kind} of its own there: stop whatever listens on that port"
            )
        if self.host not in LOCAL_HOSTS:
            raise self.error(
                f"no {self.kind} answers at {self.host}:{self.port} and it is not a local "
                f"address, so none can be started for it: check {self.setting}"
            )
        binary = self.find_binary()
        if binary is None:
            raise self.error(
                f"no {self.kind} answers at {self.host}:{self.port} and none was found to start: "
                + self.install_hint()
            )
        logger.info("starting %s on port %d", binary, self.port)
        output = self.output()
        try:
            self.process = subprocess.Popen(
                self.command(binary),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Own process group: a Ctrl-C at the terminal must not stop the service under
                # workers that are still finishing their jobs; stop() ends it after them.
                preexec_fn=own_group_dying_with_parent,
            )
        finally:
            if not isinstance(output, int):
                output.close()
        self._wait_until_answering(timeout)

    def _wait_until_answering(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if self.answers():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise self.error(f"{self.kind} did not answer on port {self.port} in {timeout}s")
            time.sleep(0.05)
        code, self.process = self.process.returncode, None
        raise self.error(f"{self.kind} exited with code {code} at start-up: {self.exit_detail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process start() began (SIGTERM, then SIGKILL after `timeout`); never another."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def log_output(path: Path) -> IO[bytes]:
    """A log file for a child's output, its folder created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")
