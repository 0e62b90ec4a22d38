"""The broker tests run on their own redis-server (6390-6399), emptied before each test.

Each runs on both event loops the connection meets: asyncio's (the web server, the CLI) and
uvloop's (the worker processes).
"""

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop

from tests.helpers.redis_server import private_redis, redis_url

__all__ = ["private_redis", "redis_url"]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
