"""Child-process helpers shared by the local services."""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child, before exec: have the kernel send SIGTERM when the parent dies (Linux only).

    So a service started for dev or tests goes away even when its parent is SIGKILLed, and
    nothing is left holding a port. Elsewhere the parent's own clean-up has to do.
    """
    if sys.platform == "linux":
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
