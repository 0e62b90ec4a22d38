"""A private redis-server for the engine and broker tests, on a free port in 6390-6399.

These tests never touch the shared test Redis (6380) or a developer's (6379): each session
starts its own server, and a test that kills Redis starts one more of its own.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

PORTS = range(6390, 6400)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(exclude: tuple[int, ...] = ()) -> int:
    """A port in 6390-6399 nobody listens on."""
    for port in PORTS:
        if port not in exclude and _port_is_free(port):
            return port
    raise RuntimeError("no free port in 6390-6399 for a test redis-server")


class RedisServer:
    """One redis-server process; `persistent` turns on an fsync-always append-only file."""

    def __init__(self, port: int, data_dir: Path, *, persistent: bool = False) -> None:
        self.port = port
        self.data_dir = data_dir
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--dir", str(self.data_dir), "--maxmemory-policy", "noeviction"]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.data_dir
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start")
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: an outage as abrupt as a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        """Stop the server if it runs (always called by the fixtures)."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's own redis-server (imported by the broker and engine conftests)."""
    server = RedisServer(free_port(), tmp_path_factory.mktemp("private-redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(private_redis: RedisServer) -> str:
    """The private server's URL, emptied (data and scripts) before the test."""
    client = redis.Redis(port=private_redis.port)
    try:
        client.flushall()
        client.script_flush()
    finally:
        client.close()
    return private_redis.url
