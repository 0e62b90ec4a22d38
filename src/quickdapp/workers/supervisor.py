"""The supervisor: WORKER_COUNT worker processes, restarted when they die, stopped gracefully.

Each worker is a child process running `python -m quickdapp.workers` (the code of
`quickdapp worker`) with the supervisor's own settings as JSON on its stdin, so every child
works with exactly the settings the supervisor was started with. The supervisor never runs a
job itself and only ever signals its own children, by their process objects.

Each child writes one byte on a pipe of its own once its Worker runs (`--ready-fd`). A child
that dies after that was serving jobs, or that was killed from outside, is replaced at once;
back-off is for children that fail on their own before they are ready (a bad setting, a
module that does not import), so they are not restarted in a tight loop. Under repeated kills
the queue is never left without workers for longer than a start-up takes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass

import uvloop
from pydantic import SecretBytes, SecretStr
from pydantic_core import to_json

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.metrics import mark_process_dead, prepare_metrics_dir
from quickdapp.signals import on_stop_signals, own_group_dying_with_parent
from quickdapp.workers.process import READY, run_audit_writer

logger = logging.getLogger(__name__)

FIRST_RESTART_DELAY = 1.0  # seconds before restarting a process that died before it was ready
MAX_RESTART_DELAY = 60.0  # the back-off doubles per such death up to this
READY_AFTER_EXIT = 2.0  # seconds to read a ready byte a child wrote just before it died
WRITER_RESTART = 1.0  # seconds before a failed audit writer starts again
# Exit codes of a child killed from outside (an operator, the OOM killer, a chaos test).
KILLED = frozenset({-signal.SIGKILL, -signal.SIGTERM, -signal.SIGINT})
KILL_GRACE = 3.0  # past WORKER_SHUTDOWN_TIMEOUT: the child ends late jobs itself, then SIGKILL


def worker_command() -> list[str]:
    """The command line of one worker process."""
    return [sys.executable, "-m", "quickdapp.workers"]


@dataclass
class _Slot:
    """One of the WORKER_COUNT places, and the process currently filling it."""

    number: int
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    restarts: int = 0
    failed_starts: int = 0  # deaths in a row before the process was ready


class Supervisor:
    """Keeps `settings.worker_processes` worker processes running until stopped."""

    def __init__(self, settings: Settings, *, command: list[str] | None = None) -> None:
        self.settings = settings
        self._command = command or worker_command()
        self._payload = _settings_json(settings)
        self._slots = [_Slot(number) for number in range(1, settings.worker_processes + 1)]
        self._signalled: set[int] = set()

    async def run(self, stop: asyncio.Event) -> int:
        """Start the processes, keep them alive until `stop` is set, then shut them down.

        Returns 0 when every process finished its jobs and exited cleanly within
        WORKER_SHUTDOWN_TIMEOUT, 1 when some had to be killed or failed to close.
        """
        logger.info(
            "supervisor %d starting %d worker processes (concurrency %d each)",
            os.getpid(),
            len(self._slots),
            self.settings.worker_queue_concurrency,
        )
        # Job counters live in files there, one set per process: they outlive restarts.
        prepare_metrics_dir(self.settings.metrics_dir)
        writer_stop = asyncio.Event()
        writing = asyncio.create_task(self._write_audit(writer_stop), name="audit writer")
        keepers = [asyncio.create_task(self._keep_alive(slot, stop)) for slot in self._slots]
        waiting = asyncio.create_task(stop.wait())
        # A keeper only ends on its own if it fails: stop everything rather than run short.
        done, _ = await asyncio.wait({waiting, *keepers}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        for task in done:
            if task is not waiting and task.exception() is not None:
                logger.error("supervisor error: %r", task.exception())
        code = await self._shut_down(keepers)
        writer_stop.set()  # after the workers: their last attempts are stored too
        await writing
        return code

    async def _write_audit(self, stop: asyncio.Event) -> None:
        """The one audit writer of all this supervisor's workers (they run none themselves)."""
        while not stop.is_set():
            try:
                app = await ServerApp.create(self.settings)
                try:
                    await run_audit_writer(app, stop)
                    return
                finally:
                    await app.close()
            except Exception:
                logger.exception("the audit writer failed; starting it again in %.0fs", WRITER_RESTART)
                try:
                    await asyncio.wait_for(stop.wait(), WRITER_RESTART)
                except TimeoutError:
                    pass

    def kill_all(self) -> None:
        """Stop now: SIGKILL every live child (a second SIGINT/SIGTERM to the supervisor)."""
        for slot in self._slots:
            if _alive(slot.process):
                logger.warning("killing worker process %d", slot.process.pid)  # type: ignore[union-attr]
                slot.process.kill()  # type: ignore[union-attr]

    async def _keep_alive(self, slot: _Slot, stop: asyncio.Event) -> None:
        while not stop.is_set():
            process, ready_fd = await self._spawn(slot)
            if stop.is_set():
                self._terminate(process)  # started while the shutdown began
            ready = await self._watch(slot, process, ready_fd)
            code = process.returncode
            mark_process_dead(process.pid, self.settings.metrics_dir)
            if stop.is_set():
                return
            lived = time.monotonic() - slot.started
            slot.restarts += 1
            delay = 0.0
            if ready:
                slot.failed_starts = 0
            elif code not in KILLED:
                # It failed on its own while starting: a setting or a module that will fail
                # the same way again. (Killed from outside, it says nothing about its start.)
                slot.failed_starts += 1
                delay = min(FIRST_RESTART_DELAY * 2 ** (slot.failed_starts - 1), MAX_RESTART_DELAY)
            logger.error(
                "worker process %d (slot %d of %d) %s after %.1fs%s; restart %d %s",
                process.pid,
                slot.number,
                len(self._slots),
                _describe_exit(code),
                lived,
                "" if ready else " (before it was ready)",
                slot.restarts,
                f"in {delay:.1f}s" if delay else "now",
            )
            if delay:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass

    async def _watch(self, slot: _Slot, process: asyncio.subprocess.Process, ready_fd: int) -> bool:
        """Wait for `process` to exit; returns whether it said it was ready before it did."""
        said = asyncio.create_task(_ready_signal(ready_fd))
        exited = asyncio.create_task(process.wait())
        await asyncio.wait({said, exited}, return_when=asyncio.FIRST_COMPLETED)
        if said.done() and said.result():
            logger.info(
                "worker process %d (slot %d) ready after %.1fs",
                process.pid,
                slot.number,
                time.monotonic() - slot.started,
            )
        await exited
        # Its write end closed with it: the byte, if written, or EOF arrives at once.
        done, _ = await asyncio.wait({said}, timeout=READY_AFTER_EXIT)
        if not done:
            said.cancel()
            return False
        return said.result()

    async def _spawn(self, slot: _Slot) -> tuple[asyncio.subprocess.Process, int]:
        """Start the slot's process; returns it and the read end of its ready pipe."""
        read_fd, write_fd = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command,
                "--ready-fd",
                str(write_fd),
                stdin=asyncio.subprocess.PIPE,
                # Ctrl-C at the terminal reaches the supervisor only, which then stops each
                # child once, in order; the child dies with the supervisor if it is killed.
                preexec_fn=own_group_dying_with_parent,
                pass_fds=(write_fd,),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the child's copy is the only one left: EOF when it exits
        slot.process, slot.started = process, time.monotonic()
        assert process.stdin is not None
        process.stdin.write(self._payload)
        try:
            await process.stdin.drain()
        except ConnectionError:
            pass  # the child died at once; its exit is reported like any other
        process.stdin.close()
        logger.info(
            "worker process %d started (slot %d of %d)", process.pid, slot.number, len(self._slots)
        )
        return process, read_fd

    def _terminate(self, process: asyncio.subprocess.Process) -> None:
        # Once only: a second SIGTERM tells a worker to drop its jobs at once.
        if _alive(process) and process.pid not in self._signalled:
            self._signalled.add(process.pid)
            process.terminate()

    async def _shut_down(self, keepers: list[asyncio.Task[None]]) -> int:
        timeout = self.settings.worker_shutdown_timeout
        live = [slot.process for slot in self._slots if slot.process and _alive(slot.process)]
        logger.info(
            "supervisor stopping %d worker processes: active jobs get %.0fs to finish",
            len(live),
            timeout,
        )
        for process in live:
            self._terminate(process)
        _, late = await asyncio.wait(keepers, timeout=timeout + KILL_GRACE)
        clean = not late
        if late:
            self.kill_all()
            await asyncio.wait(keepers)
        for process in live:
            # Ended by our SIGTERM before it had set up its handlers, so before any job.
            if process.returncode not in (0, -signal.SIGTERM):
                clean = False
                logger.warning(
                    "worker process %d %s at shutdown", process.pid, _describe_exit(process.returncode)
                )
        logger.info("supervisor stopped (%s)", "clean" if clean else "not clean")
        return 0 if clean else 1


def _settings_json(settings: Settings) -> bytes:
    """The settings as JSON for a child; secrets in clear (model_dump_json would mask them)."""
    values = {
        name: value.get_secret_value() if isinstance(value, SecretStr | SecretBytes) else value
        for name, value in settings.model_dump().items()
    }
    return to_json(values)


async def _ready_signal(read_fd: int) -> bool:
    """True once the child writes READY on its pipe; False at EOF (it exited without)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    pipe = os.fdopen(read_fd, "rb", buffering=0)
    try:
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    except BaseException:
        pipe.close()
        raise
    try:
        return await reader.read(len(READY)) == READY
    finally:
        transport.close()


def _alive(process: asyncio.subprocess.Process | None) -> bool:
    return process is not None and process.returncode is None


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def run_supervisor(settings: Settings) -> int:
    """Run the supervisor in the foreground until SIGTERM or SIGINT (twice: kill the workers now)."""

    async def supervise() -> int:
        supervisor = Supervisor(settings)
        stop = asyncio.Event()
        on_stop_signals(stop, what="stopping the worker processes", now=supervisor.kill_all)
        return await supervisor.run(stop)

    return uvloop.run(supervise())
