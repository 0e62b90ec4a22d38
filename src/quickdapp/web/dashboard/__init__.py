"""The /admin/queues dashboard: a mountable app with a JSON API and one static page calling it.

Every URL the page uses is relative, so it works under any mount prefix, behind a proxy too.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from quickdapp.limits import DEFAULT_MAX_JOB_PAYLOAD_BYTES, REQUEST_ENVELOPE_BYTES
from quickdapp.web.auth import AdminAuthMiddleware, AdminCredentials
from quickdapp.web.dashboard.audit_api import router as audit_router
from quickdapp.web.dashboard.queue_api import router as queue_router

STATIC = Path(__file__).parent / "static"


def create_dashboard(
    credentials: AdminCredentials,
    *,
    max_body_bytes: int = DEFAULT_MAX_JOB_PAYLOAD_BYTES + REQUEST_ENVELOPE_BYTES,
) -> FastAPI:
    """The dashboard app; every request needs `credentials`, and bodies past `max_body_bytes`
    get 413 (counted as they arrive: a larger one is never read whole). Its ServerApp is the
    one its owner puts in `dashboard.state.server` (see web/deps.py)."""
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
        max_body_size=max_body_bytes,
    )
    dashboard.add_exception_handler(RequestValidationError, _invalid_request)
    dashboard.include_router(queue_router)
    dashboard.include_router(audit_router)
    dashboard.mount("/static", StaticFiles(directory=STATIC), name="static")

    @dashboard.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    dashboard.add_middleware(AdminAuthMiddleware, credentials=credentials)
    return dashboard


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field and what it expects, without echoing the input back.

    FastAPI's own handler quotes each bad value: a megabyte of it, or a NaN that its JSON
    encoder then refuses (a 500 for `Infinity` as a body).
    """
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(part)[:100] for part in error.get("loc", ())],
            "msg": str(error.get("msg", ""))[:300],
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()[:20]
    ]
    return JSONResponse({"detail": errors}, status_code=422)
