"""The Node side of the interop tests: BullMQ calls, a Node Worker and Bull Board's JSON API,
each a script under node/ run with the test's Redis (REDIS_URL) and nothing else of it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from quickdapp.config import Settings
from tests.helpers.paths import ROOT
from tests.helpers.waiting import eventually

SCRIPTS = Path(__file__).resolve().parent / "node"
# What the scripts require, all pinned in package.json.
NODE_PACKAGES = ("bullmq", "ioredis", "@bull-board/api")
STOP_TIMEOUT = 10.0

Event = dict[str, Any]


def node_missing() -> str | None:
    """Why the Node side cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not on PATH (Node.js >= 20 is needed for the interop tests)"
    for package in NODE_PACKAGES:
        if not (ROOT / "node_modules" / package / "package.json").is_file():
            return f"node_modules/{package} is missing: run `make node_modules/.ready` (npm ci)"
    return None


def node_env(settings: Settings) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "REDIS_URL": settings.redis_url}


class NodeOps:
    """BullMQ calls made by Node (node/ops.js): each call is one process running its
    operations in order, e.g. `await ops({"op": "add", "name": ..., "data": ..., "opts": ...})`."""

    def __init__(self, settings: Settings, timeout: float = 60.0) -> None:
        self._env = node_env(settings)
        self._timeout = timeout

    async def __call__(self, *operations: dict[str, Any]) -> list[Any]:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(SCRIPTS / "ops.js"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env,
            cwd=ROOT,
        )
        try:
            out, err = await asyncio.wait_for(
                process.communicate(json.dumps(operations).encode()), self._timeout
            )
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"node ops.js took over {self._timeout}s: {operations}") from None
        return _result(process.returncode, out, err)

    def sync(self, *operations: dict[str, Any]) -> list[Any]:
        """The same from a test without an event loop."""
        done = subprocess.run(
            ["node", str(SCRIPTS / "ops.js")],
            input=json.dumps(operations).encode(),
            capture_output=True,
            env=self._env,
            cwd=ROOT,
            timeout=self._timeout,
            check=False,
        )
        return _result(done.returncode, done.stdout, done.stderr)

    async def one(self, operation: dict[str, Any]) -> Any:
        [result] = await self(operation)
        return result


def _result(returncode: int | None, out: bytes, err: bytes) -> list[Any]:
    if returncode != 0:
        raise AssertionError(f"node ops.js failed (exit {returncode}):\n{err.decode()}")
    results: list[Any] = json.loads(out)
    return results


class NodeProcess:
    """A long-running Node script; its stdout is read line by line into JSON events."""

    def __init__(self, settings: Settings, script: str, args: list[str], log: Path) -> None:
        self.log = log
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._stderr = log.open("wb")
        self.process = subprocess.Popen(
            ["node", str(SCRIPTS / script), *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=node_env(settings),
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            event = json.loads(line)
            with self._lock:
                self.events.append(event)

    def select(self, predicate: Callable[[Event], bool]) -> list[Event]:
        with self._lock:
            return [event for event in self.events if predicate(event)]

    async def wait_for(
        self, predicate: Callable[[Event], bool], what: str, count: int = 1, timeout: float = 20
    ) -> list[Event]:
        """The first `count` events matching `predicate`, once there are that many."""

        async def probe() -> list[Event] | None:
            self._check_alive(what)
            found = self.select(predicate)
            return found[:count] if len(found) >= count else None

        return await eventually(probe, timeout, what)

    def _check_alive(self, what: str) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.log.stem} exited ({self.process.returncode}) while waiting for {what}:\n"
                f"{self.log.read_text()}"
            )

    def stop(self) -> None:
        """SIGTERM (a graceful close), SIGKILL if it is still there after STOP_TIMEOUT."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(STOP_TIMEOUT)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._stderr.close()


class NodeWorker(NodeProcess):
    """A Node BullMQ Worker on `jobs` (node/worker.js). Its processor fails while
    `data.failures` exceeds the attempts made, sleeps `data.ms`, and returns {ranOn: "node"}."""

    def __init__(self, settings: Settings, log: Path, name: str | None, concurrency: int) -> None:
        args = ["--concurrency", str(concurrency)] + (["--name", name] if name else [])
        super().__init__(settings, "worker.js", args, log)
        self.name = name

    async def ready(self, timeout: float = 20) -> None:
        await self.wait_for(
            lambda e: e["event"] == "ready", "the Node worker to be ready", timeout=timeout
        )

    def runs(self, job_id: str | None = None) -> list[Event]:
        """Each attempt's start, in the order the worker started them."""
        return self.select(lambda e: e["event"] == "start" and job_id in (None, e["job"]["id"]))

    async def finished(self, job_id: str, timeout: float = 20) -> Event:
        """The event that ended the job's last attempt here ('completed', or 'failed' with no
        attempt left)."""

        def last(event: Event) -> bool:
            job = event.get("job")
            if job is None or job["id"] != job_id:
                return False
            attempts = int(job["opts"].get("attempts") or 1)
            return event["event"] == "completed" or (
                event["event"] == "failed" and int(job["attemptsMade"]) >= attempts
            )

        [event] = await self.wait_for(
            last, f"job {job_id} to finish on the Node worker", timeout=timeout
        )
        return event


class BullBoard(NodeProcess):
    """Bull Board's JSON API for `jobs` (node/board.js) on a free 127.0.0.1 port."""

    def __init__(self, settings: Settings, log: Path) -> None:
        super().__init__(settings, "board.js", ["--port", "0"], log)
        self.url = ""

    async def listening(self, timeout: float = 20) -> str:
        [event] = await self.wait_for(lambda e: "port" in e, "Bull Board to listen", timeout=timeout)
        self.url = f"http://127.0.0.1:{event['port']}"
        return self.url
