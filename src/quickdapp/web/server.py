"""Running the web app with uvicorn inside an existing event loop, stopped by an event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from quickdapp.config import Settings

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the caller's `stop` event decides."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_web_server(app: FastAPI, settings: Settings, stop: asyncio.Event) -> None:
    """Serve `app` on HOST:PORT until `stop` is set; raises if the port cannot be bound."""
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    server.should_exit = True
    try:
        await task
    except SystemExit:
        # uvicorn exits the process when it cannot bind; let the caller stop cleanly instead.
        pass
    if not server.started:
        raise OSError(f"the web server could not start on {settings.host}:{settings.port}")


def dashboard_url(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}/admin/queues/"
