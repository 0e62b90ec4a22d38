"""Node BullMQ (npm bullmq as pinned in the root package.json), no audit, on the shared queue.

Its worker and enqueuer are the .js files beside this one, run from the repository's root so
that `require('bullmq')` finds node_modules there (`make node_modules/.ready`).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import urlsplit

from bench.peers.base import EnqueueMode
from bench.peers.bullmq_queue import BullmqPeer
from bench.workers import ROOT, Workers

HERE = Path(__file__).resolve().parent


class NodePeer(BullmqPeer):
    name = "bullmq (Node)"

    @property
    def port(self) -> str:
        return str(urlsplit(self.url).port)

    async def start(self, workers: Workers, processes: int, concurrency: int) -> None:
        for _ in range(processes):
            await workers.spawn(["node", str(HERE / "node_worker.js"), self.port, str(concurrency)])

    async def enqueue(self, mode: EnqueueMode, n: int) -> float:
        child = await asyncio.create_subprocess_exec(
            "node", str(HERE / "node_enqueue.js"), self.port, mode, str(n), self._job_json(),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(child.communicate(), 300)
        if child.returncode:
            raise RuntimeError(f"node_enqueue.js exited with {child.returncode}")
        return float(json.loads(out)["jobs_per_s"])

    def _job_json(self) -> str:
        payload, opts = self.job("echo")
        return json.dumps({"data": payload, "opts": opts})
