"""The web app against the harness's Redis and PostgreSQL, called in-process through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.redis_client import create_redis
from quickdapp.web.app import create_app

API = "/admin/queues/api"


@asynccontextmanager
async def broken(
    app: ServerApp, *, redis_url: str | None = None, database_url: str | None = None
) -> AsyncIterator[ServerApp]:
    """`app` with its Redis or its database replaced by one at another URL (one that does not
    answer); what the variant makes of its own is closed after."""
    settings = app.settings
    if database_url is not None:
        settings = settings.model_copy(update={"database_url": database_url})
    redis = create_redis(redis_url) if redis_url is not None else app.redis
    variant = ServerApp(settings, redis, app.registry, app.queue_manager)
    try:
        yield variant
    finally:
        if redis is not app.redis:
            await redis.aclose()
        await variant.engine.dispose()  # its own engine, made at the first database check


@pytest.fixture
def web_app(settings: Settings, app: ServerApp) -> FastAPI:
    return create_app(settings, app)


@pytest.fixture
async def anonymous(web_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials."""
    transport = httpx.ASGITransport(app=web_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def admin(web_app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client sending the admin's HTTP Basic credentials."""
    transport = httpx.ASGITransport(app=web_app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        auth=(settings.admin_username, settings.admin_password),
    ) as client:
        yield client
