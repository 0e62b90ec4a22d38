"""The web app against the harness's Redis and PostgreSQL, called in-process through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.web.app import create_app

API = "/admin/queues/api"


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
