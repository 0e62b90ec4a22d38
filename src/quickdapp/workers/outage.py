"""Redis outages as a worker process sees them: said once when lost, once when back."""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

_CONNECTION_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ConnectionError,  # the builtin: refused, reset, broken pipe
    asyncio.TimeoutError,
)
_CONNECTION_MESSAGES = ("Connection closed by server", "Connection refused", "Error 111")


def is_connection_error(error: BaseException) -> bool:
    """True for the errors a lost or restarting Redis raises (as opposed to a bug or a bad job)."""
    if isinstance(error, _CONNECTION_ERRORS):
        return True
    message = str(error)
    return any(fragment in message for fragment in _CONNECTION_MESSAGES)


class OutageLog:
    """One warning when Redis goes away, one line when it answers again; silence in between.

    While Redis is down every part of a worker (job fetch, lock renewal, stalled checks,
    heartbeat) fails at its own pace; without this each would log on every try.
    """

    def __init__(self, where: str) -> None:
        self._where = where
        self._down_since: float | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def lost(self, error: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning(
                "lost the connection to Redis at %s (%s: %s); reconnecting, jobs wait meanwhile",
                self._where,
                type(error).__name__,
                error,
            )

    def restored(self) -> None:
        if self._down_since is not None:
            seconds = time.monotonic() - self._down_since
            self._down_since = None
            logger.info("Redis at %s is back after %.1fs; processing goes on", self._where, seconds)
