"""The workers tests run on their own redis-server (6390-6399), emptied before each test."""

from tests.helpers.redis_server import private_redis, redis_url

__all__ = ["private_redis", "redis_url"]
