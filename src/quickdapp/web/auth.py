"""Admin access to the dashboard: HTTP Basic or a bearer token, and refusal of cross-site mutations."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette import status
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from quickdapp.config import Settings
from quickdapp.errors import SettingsError
from quickdapp.web.password_policy import MIN_DISTINCT, MIN_LENGTH, is_loopback, weakness

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# On every dashboard response. The page loads only its own script and stylesheet, so the CSP
# allows nothing else: an injected <script> or inline handler would not run. No other site may
# frame it either: a framed page would click its buttons same-origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


@dataclass(frozen=True)
class AdminCredentials:
    """Who may use the dashboard: a user name and password, and optionally a bearer token."""

    username: str
    password: str
    token: str | None = None

    def accepts(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header value carries these credentials (constant time)."""
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.token:
            return hmac.compare_digest(value.strip().encode(), self.token.encode())
        if scheme != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, sep, password = decoded.partition(":")
        # Compare both parts whatever the first gives, so timing tells nothing.
        user_ok = hmac.compare_digest(username.encode(), self.username.encode())
        password_ok = hmac.compare_digest(password.encode(), self.password.encode())
        return bool(sep) and user_ok and password_ok


def admin_credentials(settings: Settings) -> AdminCredentials:
    """The dashboard's credentials from the settings.

    A password (and a token, if one is set) that is missing or weak (web/password_policy.py)
    is a start-up error outside development, and in development too when HOST is not a
    loopback address: whoever can reach the port can try it. In development on loopback with
    no password set, a random one is generated and logged once.
    """
    token = settings.admin_token or None
    if settings.app_env != "development" or not is_loopback(settings.host):
        why = f"APP_ENV={settings.app_env}, HOST={settings.host}"
        _refuse_weak("ADMIN_PASSWORD", settings.admin_password, why)
        if token is not None:
            _refuse_weak("ADMIN_TOKEN", token, why)
        return AdminCredentials(settings.admin_username, settings.admin_password, token)
    password = settings.admin_password
    if not password:
        password = secrets.token_urlsafe(12)
        logger.warning(
            "ADMIN_PASSWORD is not set: the dashboard password for %r is %s (generated for this run)",
            settings.admin_username,
            password,
        )
    return AdminCredentials(settings.admin_username, password, token)


def _refuse_weak(name: str, value: str, why: str) -> None:
    problem = "not set" if not value else weakness(value)
    if problem is not None:
        raise SettingsError(
            f"invalid configuration:\n  {name} is {problem}: set a secret of at least "
            f"{MIN_LENGTH} characters, {MIN_DISTINCT} of them different, that is not a common "
            f"password ({why}: required unless APP_ENV is development and HOST is loopback)"
        )


def is_cross_site(headers: Headers) -> bool:
    """Whether a browser says this request comes from another site.

    Browsers send Sec-Fetch-Site on every request and Origin on every POST; requests without
    either (curl, scripts) are not a browser acting on someone else's page.
    """
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return False
    host = headers.get("x-forwarded-host") or headers.get("host") or ""
    return origin == "null" or urlsplit(origin).netloc != host


class AdminAuthMiddleware:
    """Requires admin credentials on every request of the wrapped app (pages, assets, API,
    OpenAPI schema, websocket handshakes), refuses mutations and websockets that a browser sent
    from another site, and adds SECURITY_HEADERS to every response."""

    def __init__(self, app: ASGIApp, credentials: AdminCredentials) -> None:
        self.app = app
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        headers = Headers(scope=scope)
        response: Response | None = None
        if not self.credentials.accepts(headers.get("authorization")):
            response = JSONResponse(
                {"detail": "admin credentials required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="quickdapp admin", charset="UTF-8"'},
            )
        elif scope["method"] not in SAFE_METHODS and is_cross_site(headers):
            logger.warning("refused a cross-site %s %s", scope["method"], scope["path"])
            response = JSONResponse({"detail": "cross-site request refused"}, status_code=403)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        if response is not None:
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A handshake without credentials, or from another site's page (browsers send Basic
        credentials with websockets too), is closed before it is accepted (HTTP 403)."""
        headers = Headers(scope=scope)
        if not self.credentials.accepts(headers.get("authorization")) or is_cross_site(headers):
            logger.warning("refused a websocket to %s", scope["path"])
            await WebSocketClose(code=status.WS_1008_POLICY_VIOLATION)(scope, receive, send)
            return
        await self.app(scope, receive, send)
