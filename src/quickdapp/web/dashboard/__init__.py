"""The /admin/queues dashboard: a mountable app with a JSON API and one static page calling it.

Every URL the page uses is relative, so it works under any mount prefix, behind a proxy too.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from quickdapp.web.auth import AdminAuthMiddleware, AdminCredentials
from quickdapp.web.dashboard.audit_api import router as audit_router
from quickdapp.web.dashboard.queue_api import router as queue_router

STATIC = Path(__file__).parent / "static"


def create_dashboard(credentials: AdminCredentials) -> FastAPI:
    """The dashboard app; every request needs `credentials`. Its ServerApp is the one its
    owner puts in `dashboard.state.server` (see web/deps.py)."""
    dashboard = FastAPI(
        title="QuickDapp queue dashboard",
        description=(
            "JSON API behind the /admin/queues dashboard. Every call needs HTTP Basic admin "
            "credentials or `Authorization: Bearer <ADMIN_TOKEN>`; POST and DELETE calls that a "
            "browser sends from another site are refused (403)."
        ),
        # The schema only: a Swagger UI page would load scripts the CSP forbids (and from a
        # CDN, on the origin that holds the admin's credentials).
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    dashboard.include_router(queue_router)
    dashboard.include_router(audit_router)
    dashboard.mount("/static", StaticFiles(directory=STATIC), name="static")

    @dashboard.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    dashboard.add_middleware(AdminAuthMiddleware, credentials=credentials)
    return dashboard
