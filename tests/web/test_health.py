"""/health and /ready against the real services, and /ready when one of them is down."""

from __future__ import annotations

import httpx

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.web.app import create_app
from tests.web.conftest import broken

DEAD_REDIS = "redis://127.0.0.1:1/0"
DEAD_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"


async def _get(settings: Settings, server: ServerApp, path: str) -> httpx.Response:
    """GET `path` as the admin: /ready shows its checks' details to the admin only."""
    transport = httpx.ASGITransport(app=create_app(settings, server))
    auth = (settings.admin_username, settings.admin_password)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", auth=auth) as client:
        return await client.get(path)


async def test_health_answers_without_credentials(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_redis_and_database(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["redis"]["maxmemory_policy"] == "noeviction"
    assert body["checks"]["database"] == {"ok": True, "dialect": "postgresql"}


async def test_ready_is_503_when_the_database_is_down(settings: Settings, app: ServerApp) -> None:
    async with broken(app, database_url=DEAD_DATABASE) as dead:
        response = await _get(settings, dead, "/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] is True
    assert checks["database"]["ok"] is False
    assert checks["database"]["error"]


async def test_ready_is_503_when_redis_is_down(settings: Settings, app: ServerApp) -> None:
    async with broken(app, redis_url=DEAD_REDIS) as dead:
        response = await _get(settings, dead, "/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert "Connect" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True
