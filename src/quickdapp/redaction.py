"""Secrets kept out of what the system prints, logs and stores.

One rule for every URL the system shows (`redact`), and one for text that may hold such a URL,
or a piece of it, written by a library (`scrub`):

- userinfo: the password becomes `***` (the user name stays: it helps and is not a secret);
- query parameters whose name looks like a secret (`password=`, `token=`, `key=`, `apikey=`,
  `secret=`, `sig=`, ...): their values become `***`;
- JSON-RPC nodes (http, https, ws, wss): only scheme://host:port is left, since providers put the
  API key in the path (`/v3/<key>`) or in the user name.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

MASK = "***"
RPC_SCHEMES = frozenset({"http", "https", "ws", "wss"})
# Query parameter names that carry secrets, matched anywhere in the name (apiKey, sslpassword...).
SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|auth|sig|credential", re.IGNORECASE)
# A URL inside free text: scheme://, then anything up to a space, a quote or a bracket.
URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]{},]+")
# Path segments shorter than this are words (`v3`, `rpc`, `mainnet`), not keys.
MIN_PATH_TOKEN = 12


def redact(url: str, *, rpc: bool = False) -> str:
    """`url` as it may be shown: without password, secret query values or an RPC node's path.

    `rpc`: reduce it to scheme://host:port whatever its scheme (CHAIN_RPC_URL's value). Never
    raises: a value that does not parse as a URL is masked whole when it holds an '@'.
    """
    if "://" not in url:
        return MASK if "@" in url else url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return MASK if "@" in url else url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    where = f"{host}:{port}" if port is not None else host
    if rpc or parts.scheme.lower() in RPC_SCHEMES:
        return f"{parts.scheme}://{where}"
    user = parts.username
    if user is not None and parts.password is not None:
        where = f"{user}:{MASK}@{where}"
    elif user is not None:
        where = f"{user}@{where}"
    query = "&".join(
        f"{name}={MASK if SECRET_PARAM.search(name) else value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return f"{parts.scheme}://{where}{parts.path}" + (f"?{query}" if query else "")


def secret_parts(url: str) -> list[str]:
    """The pieces of `url` that may be secrets wherever they turn up: the password, secret query
    values, and of an RPC URL every query value and a long user name or path segment (an API
    key; short ones like `v3` are words). Longest first."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [parts.password or ""]
    rpc = parts.scheme.lower() in RPC_SCHEMES
    if rpc:
        found += [
            piece
            for piece in [parts.username or "", *parts.path.split("/")]
            if len(piece) >= MIN_PATH_TOKEN
        ]
    found += [
        value
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if rpc or SECRET_PARAM.search(name)
    ]
    return sorted({piece for piece in found if len(piece) >= 3}, key=len, reverse=True)


def scrub(text: str, *urls: str | None) -> str:
    """`text` with every URL in it redacted, and every secret piece of `urls` masked.

    For messages that libraries write (an aiohttp error quotes the URL it called, with the key
    in its path; a parse error quotes its input): they are scrubbed before they are logged,
    stored or shown.
    """
    text = URL_IN_TEXT.sub(lambda match: redact(match.group(0)), text)
    for url in urls:
        if url:
            for piece in secret_parts(url):
                text = text.replace(piece, MASK)
    return text


def describe(exc: BaseException, *urls: str | None) -> str:
    """`Type: first line of the message`, scrubbed of `urls`: an error in one line, safe to show."""
    message = str(exc).strip().partition("\n")[0]
    return f"{type(exc).__name__}: {scrub(message, *urls)}" if message else type(exc).__name__
