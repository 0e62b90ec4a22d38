"""Fixtures of the interop tests: Node BullMQ and Bull Board on the harness's Redis.

Without node or the pinned npm packages these tests skip loudly, and fail when CI is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from quickdapp.config import Settings
from tests.helpers.services import unavailable
from tests.interop.node_side import BullBoard, NodeOps, NodeWorker, node_missing

StartNodeWorker = Callable[..., NodeWorker]


@pytest.fixture(scope="session")
def node() -> None:
    """Node.js and node_modules with bullmq, ioredis and @bull-board/api (`npm ci`)."""
    missing = node_missing()
    if missing is not None:
        unavailable(missing)


@pytest.fixture
def node_ops(node: None, settings: Settings) -> NodeOps:
    return NodeOps(settings)


@pytest.fixture
def start_node_worker(node: None, settings: Settings, tmp_path: Path) -> Iterator[StartNodeWorker]:
    """Start Node BullMQ Workers on `jobs` (await `.ready()`); all are stopped after the test."""
    started: list[NodeWorker] = []

    def start(name: str | None = "node-worker", concurrency: int = 1) -> NodeWorker:
        worker = NodeWorker(
            settings, tmp_path / f"node-worker-{len(started) + 1}.log", name, concurrency
        )
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
async def bull_board(node: None, settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on Bull Board's JSON API for `jobs`; the board is stopped after the test."""
    board = BullBoard(settings, tmp_path / "bull-board.log")
    try:
        url = await board.listening()
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            yield client
    finally:
        board.stop()
