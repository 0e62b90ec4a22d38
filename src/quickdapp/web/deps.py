"""FastAPI dependencies: the process's ServerApp and the parts of it the routes use.

The app (and the mounted dashboard) keep the ServerApp in `app.state.server`, set when the app
is built with one or when its lifespan creates one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Security
from fastapi.security import HTTPBasic, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.app.server_app import ServerApp
from quickdapp.queue.inspection import QueueInspection
from quickdapp.queue.manager import QueueManager


def _server(request: Request) -> ServerApp:
    server: ServerApp = request.app.state.server
    return server


Server = Annotated[ServerApp, Depends(_server)]


def _manager(server: Server) -> QueueManager:
    return server.queue_manager


Manager = Annotated[QueueManager, Depends(_manager)]


def _inspection(manager: Manager) -> QueueInspection:
    return manager.inspect


Inspection = Annotated[QueueInspection, Depends(_inspection)]


def _sessions(server: Server) -> async_sessionmaker[AsyncSession]:
    return server.sessions


Sessions = Annotated[async_sessionmaker[AsyncSession], Depends(_sessions)]


def admin_router(prefix: str) -> APIRouter:
    """A router of the dashboard's API. AdminAuthMiddleware enforces the credentials on every
    request; the security dependencies here only document them in the OpenAPI schema."""
    return APIRouter(
        prefix=prefix,
        dependencies=[Security(HTTPBasic(auto_error=False)), Security(HTTPBearer(auto_error=False))],
    )
