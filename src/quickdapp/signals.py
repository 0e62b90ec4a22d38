"""SIGINT/SIGTERM for every long-running command: the first stops gracefully, a second at once."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

logger = logging.getLogger(__name__)


def _exit_now() -> None:
    raise SystemExit(130)


def on_stop_signals(
    stop: asyncio.Event, *, what: str = "finishing active jobs", now: Callable[[], None] = _exit_now
) -> None:
    """On the running loop: the first SIGINT/SIGTERM sets `stop`; a second one calls `now`."""
    loop = asyncio.get_running_loop()

    def first(signum: int) -> None:
        logger.info("%s received: %s (again to stop now)", signal.Signals(signum).name, what)
        stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, now)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, first, sig)
