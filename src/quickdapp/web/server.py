"""Running the web server in this process: uvicorn inside the running event loop, and in dev the
supervisor's worker processes beside it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from quickdapp.app.server_app import ServerApp
from quickdapp.app.startup import on_start
from quickdapp.config import Settings
from quickdapp.signals import exit_now, on_stop_signals
from quickdapp.web.app import create_app
from quickdapp.web.auth import AdminCredentials
from quickdapp.workers.supervisor import Supervisor

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


async def run_server(
    app: ServerApp, credentials: AdminCredentials, supervisor: Supervisor | None = None
) -> int:
    """The web server, which never runs a job, until SIGINT/SIGTERM; with a `supervisor`
    (`quickdapp dev`) its worker processes run beside it. Either way the start applies the
    default schedules. Returns the supervisor's exit code (0 without one)."""
    await on_start(app)
    settings = app.settings
    stop = asyncio.Event()
    on_stop_signals(stop, what="stopping", now=supervisor.kill_all if supervisor else exit_now)
    parts: list[Awaitable[Any]] = [
        run_web_server(create_app(settings, app, credentials=credentials), settings, stop)
    ]
    if supervisor is not None:
        parts.append(supervisor.run(stop))

    async def until_stopped(part: Awaitable[Any]) -> Any:
        try:
            return await part
        finally:
            stop.set()  # one part ending (or failing) stops the others

    results = await asyncio.gather(*(until_stopped(part) for part in parts))
    return int(results[1]) if supervisor is not None else 0
