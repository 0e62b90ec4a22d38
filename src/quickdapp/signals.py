"""Signals: SIGINT/SIGTERM for every long-running command (the first stops gracefully, a second
at once), and the set-up that takes child processes down with their parent."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def exit_now() -> None:
    """Leave at once, as a shell reports an interrupted command (128 + SIGINT)."""
    raise SystemExit(130)


def on_stop_signals(
    stop: asyncio.Event, *, what: str = "finishing active jobs", now: Callable[[], None] = exit_now
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


def own_group_dying_with_parent() -> None:
    """In a child, before exec (`preexec_fn`): its own process group, and SIGTERM from the
    kernel when the parent dies (Linux only).

    The group: a Ctrl-C at the terminal reaches the parent only, which stops its children
    itself, in its own order. The death signal: a child (a worker process, a local service for
    dev or tests) goes away even when its parent is SIGKILLed, and nothing is left holding a
    port; elsewhere the parent's own clean-up has to do. Set here rather than with
    `process_group=0`, which uvloop's subprocess_exec does not take.
    """
    os.setpgid(0, 0)
    if sys.platform == "linux":
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
