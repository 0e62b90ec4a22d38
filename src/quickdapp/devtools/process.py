"""Child-process helpers shared by the local services."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child, before exec: have the kernel send SIGTERM when the parent dies (Linux only).

    So a service started for dev or tests goes away even when its parent is SIGKILLed, and
    nothing is left holding a port. Elsewhere the parent's own clean-up has to do.
    """
    if sys.platform == "linux":
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_until_answering(
    process: subprocess.Popen[bytes], answers: Callable[[], bool], timeout: float
) -> bool:
    """Poll `answers` until it is true (True) or the child exits first (False).

    Raises TimeoutError when neither happens within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if answers():
            return True
        time.sleep(0.05)
    raise TimeoutError(f"no answer in {timeout}s")


def stop_child(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM a child this process started, SIGKILL it after `timeout`; an exited one is left."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
