"""The BullMQ peers of `make bench` enqueue the very job this system's submit_job makes.

Redis runs a different script for a bare job (addStandardJob) than for one with a priority
(addPrioritizedJob), and the options decide what finishing it costs (retention): a peer adding
other jobs would be measured on other work.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.peers.bullmq_queue import BullmqPeer
from bench.peers.node import NodePeer
from bench.peers.stock import StockPeer
from quickdapp.config import Settings
from tests.helpers.paths import ROOT

PER_JOB = ("jobId", "delay")  # its own id; delay 0, which bullmq's Node Job leaves out


async def _stored(peer: BullmqPeer) -> list[dict[str, Any]]:
    redis = peer.app.redis
    jobs = []
    for job_id in await redis.zrange("bull:jobs:prioritized", 0, -1):
        fields = await redis.hgetall(f"bull:jobs:{job_id!s}")  # decoded replies: str
        opts = {k: v for k, v in json.loads(fields["opts"]).items() if k not in PER_JOB}
        jobs.append({"name": fields["name"], "data": json.loads(fields["data"]), "opts": opts})
    return jobs


@pytest.mark.parametrize("peer_class", [NodePeer, StockPeer])
@pytest.mark.parametrize("mode", ["one", "bulk"])
async def test_a_peer_enqueues_what_submit_job_makes(
    settings: Settings, peer_class: type[BullmqPeer], mode: str
) -> None:
    if peer_class is NodePeer and not (ROOT / "node_modules" / "bullmq").is_dir():
        pytest.skip("needs node_modules (make node_modules/.ready)")
    peer = peer_class(settings.model_copy(update={"job_modules": "bench.jobs"}))
    await peer.open()
    try:
        await peer.enqueue(mode, 3)  # type: ignore[arg-type]
        theirs = await _stored(peer)
        await peer.app.redis.flushdb()
        await peer.app.queue_manager.submit_job("echo", {})
        (ours,) = await _stored(peer)
    finally:
        await peer.close()
    assert len(theirs) == 4  # the three, and the one that opened the connections
    assert all(job == ours for job in theirs), (theirs[0], ours)
    assert ours["opts"]["priority"] == 20 and ours["opts"]["removeOnComplete"]
