"""The web surface: /ready's details for the admin only, no docs at the root, no Swagger page,
a Content-Security-Policy on every dashboard response, websockets authenticated, and weak
passwords refused wherever the server can be reached from another machine."""

from __future__ import annotations

import base64
import subprocess
import sys

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Message
from starlette.websockets import WebSocket

from quickdapp.app.server_app import ServerApp
from quickdapp.config import Settings
from quickdapp.errors import SettingsError
from quickdapp.web.app import create_app
from quickdapp.web.auth import (
    CONTENT_SECURITY_POLICY,
    AdminAuthMiddleware,
    AdminCredentials,
    admin_credentials,
)
from quickdapp.web.password_policy import is_loopback, weakness
from tests.helpers.paths import ROOT
from tests.web.conftest import API, broken

STRONG = "correct-horse-battery-staple"


async def test_ready_shows_only_its_status_to_anonymous_callers(
    anonymous: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    public = await anonymous.get("/ready")
    assert public.status_code == 200 and public.json() == {"status": "ready"}
    detailed = await admin.get("/ready")
    assert detailed.json()["checks"]["redis"]["maxmemory_policy"] == "noeviction"


async def test_ready_hides_the_error_of_a_failing_check_from_anonymous_callers(
    settings: Settings, app: ServerApp
) -> None:
    async with broken(app, redis_url="redis://127.0.0.1:1/0") as dead:
        web = create_app(settings, dead)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=web), base_url="http://testserver"
        ) as client:
            public = await client.get("/ready")
            detailed = await client.get(
                "/ready", auth=(settings.admin_username, settings.admin_password)
            )
    assert public.status_code == 503 and public.json() == {"status": "unavailable"}
    assert detailed.status_code == 503 and "Connect" in detailed.json()["checks"]["redis"]["error"]


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
async def test_no_api_docs_at_the_root(
    anonymous: httpx.AsyncClient, admin: httpx.AsyncClient, path: str
) -> None:
    assert (await anonymous.get(path)).status_code == 404
    assert (await admin.get(path)).status_code == 404


async def test_the_dashboard_has_its_schema_but_no_swagger_page(
    anonymous: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    assert (await anonymous.get(f"{API}/openapi.json")).status_code == 401
    assert (await admin.get(f"{API}/openapi.json")).json()["openapi"].startswith("3.")
    assert (await admin.get(f"{API}/docs")).status_code == 404
    page = (await admin.get("/admin/queues/")).text
    assert "api/docs" not in page and 'href="api/openapi.json"' in page
    # Nothing from another origin: every src and href is relative.
    assert "//" not in page.replace("<!doctype html>", "")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/queues/"),
        ("GET", "/admin/queues/static/app.js"),
        ("GET", "/admin/queues/static/style.css"),
        ("GET", "/admin/queues/static/missing.js"),
        ("GET", f"{API}/overview"),
        ("GET", f"{API}/jobs/no-such-job"),
        ("GET", f"{API}/openapi.json"),
        ("POST", f"{API}/jobs"),
        ("DELETE", f"{API}/jobs/no-such-job"),
    ],
)
async def test_every_dashboard_response_carries_the_security_headers(
    anonymous: httpx.AsyncClient, admin: httpx.AsyncClient, method: str, path: str
) -> None:
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    for client in (anonymous, admin):
        response = await client.request(method, path)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, response
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"


def _websocket_app(credentials: AdminCredentials) -> AdminAuthMiddleware:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello admin")
        await websocket.close()

    return AdminAuthMiddleware(Starlette(routes=[WebSocketRoute("/ws", echo)]), credentials)


async def _handshake(app: ASGIApp, path: str, headers: dict[str, str]) -> list[Message]:
    """Drive one websocket handshake through the ASGI app; returns what the app sent back."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")]
        + [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
    }
    incoming: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


CREDENTIALS = AdminCredentials("admin", STRONG, "a-bearer-token-123")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": _basic("admin", "wrong-password")},
        {"Authorization": "Bearer wrong-token"},
        # Browsers send Basic credentials with websockets too: another site's page must not use them.
        {"Authorization": _basic("admin", STRONG), "Origin": "https://evil.example"},
        {"Authorization": _basic("admin", STRONG), "Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_websocket_handshakes_need_credentials_from_the_same_site(headers: dict[str, str]) -> None:
    sent = await _handshake(_websocket_app(CREDENTIALS), "/ws", headers)
    # Closed before it was accepted: the server answers the handshake with HTTP 403.
    assert [message["type"] for message in sent] == ["websocket.close"]
    assert sent[0]["code"] == 1008


async def test_a_websocket_with_admin_credentials_is_accepted() -> None:
    for authorization in (_basic("admin", STRONG), "Bearer a-bearer-token-123"):
        headers = {"Authorization": authorization, "Origin": "http://testserver"}
        sent = await _handshake(_websocket_app(CREDENTIALS), "/ws", headers)
        assert [message["type"] for message in sent][:2] == ["websocket.accept", "websocket.send"]
        assert sent[1]["text"] == "hello admin"


async def test_the_mounted_dashboard_refuses_anonymous_websockets(
    settings: Settings, app: ServerApp
) -> None:
    sent = await _handshake(create_app(settings, app), "/admin/queues/api/overview", {})
    assert [message["type"] for message in sent] == ["websocket.close"]
    assert sent[0]["code"] == 1008


@pytest.mark.parametrize(
    "password",
    [
        "",
        "admin",
        "changeme",
        "short",
        " " * 12,
        "\t" * 16,
        "password1234",
        "Password1234!",
        "PASSWORD-2024",
        "admin12345678",
        "qwerty123456",
        "letmein!!!!!!",
        "123456789012",
        "aaaaaaaaaaaaaaaa",
        "121212121212",
        "abcabcabcabc",
    ],
)
def test_weak_passwords_are_named(password: str) -> None:
    assert weakness(password) is not None


@pytest.mark.parametrize(
    "password", [STRONG, "test-admin-password", "7fK#p2Lq9xZ!", "passphrase of five words"]
)
def test_strong_passwords_pass(password: str) -> None:
    assert weakness(password) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "", "192.168.1.5", "10.0.0.1", "example.com", "my-host"]
)
def test_hosts_reachable_from_elsewhere(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    ("app_env", "host", "password", "refused"),
    [
        # Development on loopback: anything goes (an empty password is generated).
        ("development", "127.0.0.1", "", False),
        ("development", "127.0.0.1", "admin", False),
        ("development", "::1", "admin", False),
        # Development anywhere else: the same rule as production.
        ("development", "0.0.0.0", "admin", True),
        ("development", "0.0.0.0", "", True),
        ("development", "192.168.1.5", "password1234", True),
        ("development", "0.0.0.0", STRONG, False),
        ("test", "127.0.0.1", " " * 12, True),
        ("production", "127.0.0.1", "password1234", True),
        ("production", "0.0.0.0", " " * 12, True),
        ("production", "0.0.0.0", STRONG, False),
    ],
)
def test_a_weak_password_is_refused_wherever_one_is_required(
    settings: Settings, app_env: str, host: str, password: str, refused: bool
) -> None:
    chosen = settings.model_copy(
        update={"app_env": app_env, "host": host, "admin_password": password, "admin_token": ""}
    )
    if refused:
        with pytest.raises(SettingsError, match="ADMIN_PASSWORD"):
            admin_credentials(chosen)
    else:
        assert admin_credentials(chosen).password


@pytest.mark.parametrize("token", ["secret", " " * 20, "token1234567890"])
def test_a_weak_token_is_refused_where_a_password_is_required(settings: Settings, token: str) -> None:
    chosen = settings.model_copy(
        update={"app_env": "development", "host": "0.0.0.0", "admin_password": STRONG}
    )
    with pytest.raises(SettingsError, match="ADMIN_TOKEN"):
        admin_credentials(chosen.model_copy(update={"admin_token": token}))


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_serve_and_dev_on_all_interfaces_refuse_admin_admin_in_one_line(command: str) -> None:
    """Today's reproduction: ADMIN_PASSWORD=admin, APP_ENV=development, HOST=0.0.0.0."""
    env = {
        "PATH": "/usr/bin:/bin",
        "APP_ENV": "development",
        "HOST": "0.0.0.0",
        "ADMIN_PASSWORD": "admin",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # never reached: the refusal comes first
        "CHAIN_RPC_URL": "",
    }
    done = subprocess.run(
        [sys.executable, "-m", "quickdapp.cli", "--env-file", "/dev/null", command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "ADMIN_PASSWORD is shorter than 12 characters" in done.stderr
    assert "HOST=0.0.0.0" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
