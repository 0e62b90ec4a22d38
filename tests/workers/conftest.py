"""The workers tests run on their own redis-server (6390-6399), emptied before each test.

In-process tests run on uvloop, the event loop of the worker processes.
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
    return {"uvloop": uvloop.new_event_loop}
