"""`make bench` in miniature, so that it cannot rot unnoticed: two systems, tiny sizes, one run.

Runs `python -m bench.compare --tiny` (this system with its audit trail on SQLite, and Node
BullMQ) and checks the shape of what it writes: every workload measured for both systems, the
targets table, the markdown page and the PNG chart; with `--commands`, Redis's time per job by
command after each drain.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT

SYSTEMS = ["quickdapp (audit SQLite)", "bullmq (Node)"]
WORKLOADS = {
    "drain 1x1",
    "drain 1x50",
    "drain 2x50",
    "50 ms jobs at 2x50",
    "latency at 100 jobs/s",
    "sparse arrivals",
    "delayed job lateness",
    "idle RSS per worker process",
}
ENQUEUE = {"enqueue one by one", "enqueue bulk"}
DRAINS = [("100", "echo"), ("200", "echo"), ("200", "echo"), ("200", "sleep")]  # 1x1, 1x50, 2x50


@pytest.mark.timeout(90)
def test_compare_writes_every_figure(tmp_path: Path) -> None:
    if not (ROOT / "node_modules" / "bullmq").is_dir() or shutil.which("redis-server") is None:
        pytest.skip("needs node_modules (make node_modules/.ready) and redis-server")
    results, docs = tmp_path / "results", tmp_path / "docs"
    args = ["--tiny", "--systems", "qd-sqlite,node", "--commands"]
    args += ["--results", str(results), "--docs", str(docs)]
    run = subprocess.run(
        [sys.executable, "-m", "bench.compare", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    document = json.loads((results / "bench.json").read_text())
    assert document["errors"] == []
    summary = document["summary"]
    assert set(summary) == WORKLOADS | ENQUEUE
    for workload in WORKLOADS:
        assert set(summary[workload]) == set(SYSTEMS), workload
    for workload in ENQUEUE:
        assert set(summary[workload]) == set(SYSTEMS), workload
    drain = summary["drain 1x50"]["quickdapp (audit SQLite)"]
    assert drain["jobs_per_s"]["runs"] == 1 and drain["jobs_per_s"]["median"] > 0
    assert "jobs_per_s_before_rows" in drain  # the audit trail's rows were waited for
    for system in SYSTEMS:  # what Redis spent on the drain, beside the workers' CPU
        assert summary["drain 2x50"][system]["redis_cpu_us_per_job"]["median"] > 0, system
    for system in SYSTEMS:  # --commands: each drain's line, BullMQ's scripts (EVALSHA) in it
        lines = re.findall(
            rf"Redis µs/job by command, {re.escape(system)}, ([\d,]+) (\w+): (.*)", run.stdout
        )
        assert [(n, kind) for n, kind, _ in lines] == DRAINS, (system, run.stdout[-3000:])
        assert all(re.search(r"\bevalsha [\d.]+ \(1\.\d\d\)", shown) for *_, shown in lines), lines
    assert "audit_lag_p99_ms" in summary["latency at 100 jobs/s"]["quickdapp (audit SQLite)"]
    assert summary["drain 2x50"]["bullmq (Node)"]["jobs_per_s"]["x_node"] == 1.0
    assert len(document["targets"]) == 11

    page = (docs / "benchmark.md").read_text()
    assert "## Targets" in page and "## All figures" in page
    # The machine's floor for the latency figures, measured before the rounds.
    assert re.search(r"takes [\d.]+ ms after 0.01 s and [\d.]+ ms after 1 s idle", page), page[:800]
    assert "| workload | metric | quickdapp (audit SQLite) | bullmq (Node) |" in page
    assert (docs / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
