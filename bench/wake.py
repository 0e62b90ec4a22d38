"""How long this machine takes to wake for a message: the floor of the latency figures.

A job added to an idle queue crosses several sleeping processes (the client, Redis, a worker)
before it starts, and each must be woken. On some VMs an idle core takes milliseconds to wake
(a PING round trip to a fresh redis-server after 1 s idle: 7-9 ms on one 2-core machine, 0.65
ms when busy), which no queue can beat: `make bench` measures it before its rounds and prints
it beside the latency figures. `PYTHONPATH=. .venv/bin/python bench/wake.py` measures it alone
(on a private Redis).
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.redis_server import redis_server

GAPS = (0.01, 1.0)  # seconds idle before each PING
TIMES = 5  # PINGs per gap, the median kept


def ping_after_idle_ms(redis_url: str, gap: float, times: int = TIMES) -> float:
    """Median ms of a PING round trip to `redis_url` sent after `gap` seconds of silence."""
    url = urlsplit(redis_url)
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rounds = []
        for _ in range(times):
            time.sleep(gap)
            began = time.perf_counter()
            sock.sendall(b"PING\r\n")
            if sock.recv(64) != b"+PONG\r\n":
                raise RuntimeError(f"no PONG from {redis_url}")
            rounds.append((time.perf_counter() - began) * 1000)
    return statistics.median(rounds)


def wake_line(redis_url: str) -> str:
    """One sentence for a report: the round trips after each of GAPS."""
    figures = [f"{ping_after_idle_ms(redis_url, gap):.2f} ms after {gap:g} s" for gap in GAPS]
    rounds = " and ".join(figures)
    return f"Wake-up floor: a PING round trip to Redis takes {rounds} idle (median of {TIMES})."


def main() -> None:
    with tempfile.TemporaryDirectory() as work, redis_server(Path(work)) as redis_url:
        print(wake_line(redis_url))


if __name__ == "__main__":
    main()
