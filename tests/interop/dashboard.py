"""Our dashboard's JSON API, called in-process as its page calls it."""

from __future__ import annotations

from typing import Any

import httpx

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.web.app import create_app


async def overview(settings: Settings, app: ServerApp) -> dict[str, Any]:
    """The dashboard's overview: counts, workers, warnings, schedulers."""
    transport = httpx.ASGITransport(app=create_app(settings, app))
    auth = (settings.admin_username, settings.admin_password)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", auth=auth) as client:
        response = await client.get("/admin/queues/api/overview")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body
