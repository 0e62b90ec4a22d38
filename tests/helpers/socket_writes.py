"""Seeing what a Connection writes to its socket, on either event loop.

uvloop's transports do not let a test replace their `write`, so the connection's protocol is
given a transport that notes each write and hands it on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from quickdapp.broker.connection import Connection


class _NotingTransport:
    def __init__(self, inner: asyncio.Transport, note: Callable[[bytes], None]) -> None:
        self._inner, self._note = inner, note

    def write(self, data: bytes) -> None:
        self._note(data)
        self._inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def note_writes(conn: Connection, note: Callable[[bytes], None]) -> None:
    """Call `note` with what each write of `conn`'s open socket carries, from now on."""
    protocol = conn._protocol
    assert protocol is not None and protocol.transport is not None, "connect first"
    protocol.transport = _NotingTransport(protocol.transport, note)  # type: ignore[assignment]
