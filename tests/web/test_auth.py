"""Admin access: credentials on every dashboard request, refused default secrets, cross-site POSTs."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from quickdapp.app.server_app import ServerApp
from quickdapp.cli import main
from quickdapp.config import Settings
from quickdapp.errors import SettingsError
from quickdapp.web.auth import CONTENT_SECURITY_POLICY, admin_credentials
from tests.web.conftest import API

PROTECTED = [
    "/admin/queues/",
    "/admin/queues/static/app.js",
    "/admin/queues/api/openapi.json",
    f"{API}/overview",
    f"{API}/jobs?state=failed",
    f"{API}/audit/history",
]


@pytest.mark.parametrize("path", PROTECTED)
async def test_every_dashboard_url_needs_credentials(
    anonymous: httpx.AsyncClient, admin: httpx.AsyncClient, path: str
) -> None:
    refused = await anonymous.get(path)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Basic ")
    assert refused.json() == {"detail": "admin credentials required"}
    allowed = await admin.get(path)
    assert allowed.status_code == 200
    for response in (refused, allowed):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "authorization",
    [
        httpx.BasicAuth("admin", "wrong-password"),
        httpx.BasicAuth("someone", "test-admin-password"),
        "Bearer wrong-token",
        "Basic !!!not-base64",
    ],
)
async def test_wrong_credentials_get_401_and_nothing_else(
    anonymous: httpx.AsyncClient, app: ServerApp, authorization: httpx.BasicAuth | str
) -> None:
    auth = authorization if isinstance(authorization, httpx.BasicAuth) else None
    headers = {"Authorization": authorization} if isinstance(authorization, str) else {}
    for method, path in [("GET", "overview"), ("POST", "pause")]:
        response = await anonymous.request(method, f"{API}/{path}", auth=auth, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"detail": "admin credentials required"}
    assert not await app.queue_manager.queue.isPaused()


async def test_the_bearer_token_is_accepted(anonymous: httpx.AsyncClient, settings: Settings) -> None:
    headers = {"Authorization": f"Bearer {settings.admin_token}"}
    response = await anonymous.get(f"{API}/overview", headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
async def test_cross_site_mutations_are_refused(
    admin: httpx.AsyncClient, app: ServerApp, headers: dict[str, str]
) -> None:
    response = await admin.post(f"{API}/pause", headers=headers)
    assert response.status_code == 403
    assert response.json() == {"detail": "cross-site request refused"}
    job = await admin.post(f"{API}/jobs", json={"type": "echo", "data": {}}, headers=headers)
    assert job.status_code == 403
    assert not await app.queue_manager.queue.isPaused()
    assert await app.queue_manager.queue.getJobCountByTypes("waiting", "prioritized") == 0


async def test_same_origin_mutations_are_accepted(admin: httpx.AsyncClient, app: ServerApp) -> None:
    headers = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert (await admin.post(f"{API}/pause", headers=headers)).status_code == 200
    assert await app.queue_manager.queue.isPaused()


@pytest.mark.parametrize("password", ["", "admin", "changeme", "short"])
def test_a_missing_or_default_password_outside_development_stops_start_up(
    settings: Settings, password: str
) -> None:
    for env in ("test", "production"):
        bad = settings.model_copy(update={"app_env": env, "admin_password": password})
        with pytest.raises(SettingsError, match="ADMIN_PASSWORD"):
            admin_credentials(bad)


def test_a_default_token_outside_development_stops_start_up(settings: Settings) -> None:
    bad = settings.model_copy(update={"app_env": "production", "admin_token": "secret"})
    with pytest.raises(SettingsError, match="ADMIN_TOKEN"):
        admin_credentials(bad)


def test_development_without_a_password_generates_one_and_logs_it_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    dev = settings.model_copy(update={"app_env": "development", "admin_password": ""})
    with caplog.at_level(logging.WARNING, logger="quickdapp.web.auth"):
        first = admin_credentials(dev)
    second = admin_credentials(dev)
    assert len(first.password) >= 12 and first.password != second.password
    lines = [r.getMessage() for r in caplog.records if first.password in r.getMessage()]
    assert len(lines) == 1


def test_serve_refuses_to_start_with_a_default_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text(
        "APP_ENV=production\nADMIN_PASSWORD=changeme\nREDIS_URL=redis://127.0.0.1:1/0\nPORT=1\n"
    )
    assert main(["--env-file", str(env_file), "serve"]) == 2
    assert "ADMIN_PASSWORD" in capsys.readouterr().err
