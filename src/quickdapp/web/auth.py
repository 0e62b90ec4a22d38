"""Admin access to the dashboard: HTTP Basic or a bearer token, and refusal of cross-site mutations."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quickdapp.config import Settings
from quickdapp.errors import SettingsError

logger = logging.getLogger(__name__)

# Secrets that are refused outside development: the ones people leave in place.
WEAK_SECRETS = frozenset({"", "admin", "password", "changeme", "change-me", "secret", "123456"})
MIN_SECRET_LENGTH = 12
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# No other site may frame the dashboard: a framed page would click its buttons same-origin.
FRAME_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
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

    Outside development a missing, default or short password (or token) is a start-up error;
    in development with no password set, a random one is generated and logged once.
    """
    token = settings.admin_token or None
    if settings.app_env != "development":
        _refuse_weak("ADMIN_PASSWORD", settings.admin_password)
        if token is not None:
            _refuse_weak("ADMIN_TOKEN", token)
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


def _refuse_weak(name: str, value: str) -> None:
    if value.lower() in WEAK_SECRETS or len(value) < MIN_SECRET_LENGTH:
        raise SettingsError(
            f"invalid configuration:\n  {name}: set a secret of at least {MIN_SECRET_LENGTH} "
            "characters (not a default) when APP_ENV is not development"
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
    OpenAPI schema) and refuses mutations that a browser sent from another site."""

    def __init__(self, app: ASGIApp, credentials: AdminCredentials) -> None:
        self.app = app
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
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
                message = {**message, "headers": [*message.get("headers", []), *FRAME_HEADERS]}
            await send(message)

        if response is not None:
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
