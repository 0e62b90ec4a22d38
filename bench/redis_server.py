"""A private redis-server for one benchmark run, on a free port the system hands out (never
6379 or the tests' 6380 and 6390-6399: those are below the ephemeral range).

Production-like where it matters to a queue: default `hz` (10, not raised), maxmemory-policy
noeviction; no persistence (no RDB snapshots, no append-only file), so disk speed is not part
of what is measured.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """Starts redis-server, yields its URL, stops it."""
    port = _free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    args += ["--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def redis_cpu_s(client: Any) -> float:
    """User + system CPU seconds the redis-server behind `client` (redis-py) has used so far."""
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def command_times(client: Any, *, reset: bool) -> dict[str, tuple[int, int]]:
    """Redis's INFO commandstats behind `client` (redis-py): command -> (calls, µs spent in it),
    since the last reset; `reset` starts a new count (CONFIG RESETSTAT) after reading.

    A command a Lua script or a MULTI runs is counted on its own too, and inside the time of
    the EVALSHA or EXEC that ran it: the figures overlap and do not add up."""
    stats = await client.info("commandstats")
    if reset:
        await client.config_resetstat()
    return {
        name.removeprefix("cmdstat_"): (int(value["calls"]), int(value["usec"]))
        for name, value in stats.items()
    }
