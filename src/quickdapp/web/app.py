"""The web app: /health, /ready, /metrics and the dashboard mounted at /admin/queues.

The server process submits and schedules jobs through its QueueManager; it never runs them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import text

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.limits import REQUEST_ENVELOPE_BYTES
from quickdapp.redaction import scrub
from quickdapp.redis_client import RedisHealth, redis_health
from quickdapp.web.auth import AdminCredentials, admin_credentials
from quickdapp.web.dashboard import create_dashboard
from quickdapp.web.deps import Manager, Server
from quickdapp.web.scrape import CONTENT_TYPE, render_metrics

logger = logging.getLogger(__name__)

DASHBOARD_PREFIX = "/admin/queues"
READY_TIMEOUT = 3.0


def create_app(
    settings: Settings,
    server: ServerApp | None = None,
    *,
    credentials: AdminCredentials | None = None,
) -> FastAPI:
    """The web app. Without `server`, it creates its ServerApp at start-up and closes it at exit.

    Admin credentials are checked here, so a missing or weak secret where one is required
    stops start-up (SettingsError). /ready shows its checks' details to the admin only.
    """
    credentials = credentials or admin_credentials(settings)
    dashboard = create_dashboard(
        credentials, max_body_bytes=settings.max_job_payload_bytes + REQUEST_ENVELOPE_BYTES
    )

    def use(current: ServerApp) -> None:
        app.state.server = dashboard.state.server = current

    # No docs or schema at the root: the API is the dashboard's, documented (behind the
    # admin's credentials) at /admin/queues/api/openapi.json.
    app = FastAPI(
        title="QuickDapp",
        lifespan=_lifespan(settings, server, use),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if server is not None:
        use(server)
    _add_probes(app, settings, credentials)
    _mount_dashboard(app, dashboard)
    return app


def _lifespan(
    settings: Settings, server: ServerApp | None, use: Callable[[ServerApp], None]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: the given `server` as is, else a ServerApp made at start-up and
    closed at exit."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if server is not None:
            yield
            return
        created = await ServerApp.create(settings)
        use(created)
        try:
            yield
        finally:
            await created.close()

    return lifespan


def _add_probes(app: FastAPI, settings: Settings, credentials: AdminCredentials) -> None:
    """/health, /ready and /metrics."""

    @app.get("/health", summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="Redis and the database answer (503 when either does not)")
    async def ready(current: Server, request: Request) -> JSONResponse:
        redis = await redis_health(current.redis)
        database = await _database_check(current)
        ok = redis.ok and bool(database["ok"])
        status = {"status": "ready" if ok else "unavailable"}
        code = 200 if ok else 503
        if not credentials.accepts(request.headers.get("authorization")):
            # Probes need the status only; error texts tell strangers what runs where.
            return JSONResponse(status, status_code=code)
        checks = {"redis": _redis_check(redis, settings.redis_url), "database": database}
        return JSONResponse({**status, "checks": checks}, status_code=code)

    @app.get("/metrics", summary="Prometheus metrics of every worker and the queue's depths")
    async def metrics(manager: Manager) -> Response:
        body = await render_metrics(manager, settings.metrics_dir)
        return Response(body, media_type=CONTENT_TYPE)


def _mount_dashboard(app: FastAPI, dashboard: FastAPI) -> None:
    """The dashboard at DASHBOARD_PREFIX, the prefix without its slash redirected there."""

    @app.get(DASHBOARD_PREFIX, include_in_schema=False)
    async def dashboard_slash() -> RedirectResponse:
        # Relative, so it stays right behind a proxy that serves us under a sub-path.
        return RedirectResponse("queues/")

    app.mount(DASHBOARD_PREFIX, dashboard)


def _redis_check(redis: RedisHealth, redis_url: str) -> dict[str, Any]:
    """/ready's Redis details for the admin, the error scrubbed of the Redis URL."""
    return {
        "ok": redis.ok,
        "version": redis.version,
        "maxmemory_policy": redis.maxmemory_policy,
        "warnings": redis.warnings,
        "error": scrub(redis.error, redis_url) if redis.error else None,
    }


async def _database_check(server: ServerApp) -> dict[str, Any]:
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with server.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:  # readiness reports the failure instead of raising
        return {
            "ok": False,
            "dialect": server.engine.dialect.name,
            "error": scrub(f"{type(exc).__name__}: {exc}", server.settings.database_url),
        }
    return {"ok": True, "dialect": server.engine.dialect.name}
