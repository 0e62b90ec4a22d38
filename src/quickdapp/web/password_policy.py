"""Which dashboard secrets (ADMIN_PASSWORD, ADMIN_TOKEN) are too weak to guard a reachable server.

The rule, kept small enough to state in the README:
- at least MIN_LENGTH characters, and at least MIN_DISTINCT different ones (refuses twelve
  spaces, `aaaaaaaaaaaa`, `121212121212`);
- not a common password: the value, lower-cased and with the digits and punctuation at its
  ends removed, is none of COMMON_WORDS (refuses `password1234`, `Admin2024!!!!`, `qwerty123456`).
"""

from __future__ import annotations

import ipaddress
import string

MIN_LENGTH = 12
MIN_DISTINCT = 6
# The stems people pad to a required length; the value with its padding removed is checked.
COMMON_WORDS = frozenset(
    {
        "",
        "admin",
        "administrator",
        "changeme",
        "change-me",
        "default",
        "dragon",
        "iloveyou",
        "letmein",
        "master",
        "monkey",
        "pass",
        "passw0rd",
        "password",
        "qwerty",
        "qwertyuiop",
        "root",
        "secret",
        "test",
        "token",
        "welcome",
        "abc",
        "abcdef",
        "asdfghjkl",
        "trustno1",
    }
)
_PADDING = string.digits + string.punctuation + string.whitespace


def weakness(value: str) -> str | None:
    """Why `value` is too weak to be a dashboard secret, or None when it will do."""
    if len(value) < MIN_LENGTH:
        return f"shorter than {MIN_LENGTH} characters"
    if len(set(value)) < MIN_DISTINCT:
        return f"fewer than {MIN_DISTINCT} different characters"
    if value.lower().strip(_PADDING) in COMMON_WORDS:
        return "a common password"
    return None


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the server reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
