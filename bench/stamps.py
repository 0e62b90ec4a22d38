"""When each job started, as every worker process of a benchmark notes it.

A worker appends "job_id epoch_ms" lines to a file of its own (named by its pid) in the folder
that $BENCH_STAMP_DIR names: one unbuffered write per job, nothing to flush when the process is
stopped. Node's worker writes the same lines (bench/peers/node_worker.js).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

STAMP_DIR = "BENCH_STAMP_DIR"

_fd: int | None = None


def record_start(job_id: str) -> None:
    """Notes that job `job_id` starts now."""
    global _fd
    if _fd is None:
        path = Path(os.environ[STAMP_DIR]) / f"{os.getpid()}.txt"
        _fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(_fd, f"{job_id} {time.time() * 1000:.3f}\n".encode())


def read_starts(folder: Path) -> dict[str, float]:
    """Every job's start (epoch ms) noted in `folder`; the first, if a job started twice."""
    starts: dict[str, float] = {}
    for path in sorted(folder.glob("*.txt")):
        for line in path.read_text().splitlines():
            job_id, at = line.split()
            starts.setdefault(job_id, float(at))
    return starts
