"""One redaction for every URL the system shows, and scrubbing of library messages that quote one."""

from __future__ import annotations

import logging

import pytest

from quickdapp.config import load_settings
from quickdapp.errors import SettingsError
from quickdapp.logs import SecretFilter
from quickdapp.redaction import redact, scrub, secret_parts

KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret-pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://default:s3cret-pw@cache.example:6380/2", "rediss://default:***@cache.example:6380/2"),
        (
            "postgresql+asyncpg://app:s3cret-pw@db.example:5432/app?sslpassword=s3cret-pw&ssl=require",
            "postgresql+asyncpg://app:***@db.example:5432/app?sslpassword=***&ssl=require",
        ),
        ("redis://127.0.0.1:6379/0?password=s3cret-pw", "redis://127.0.0.1:6379/0?password=***"),
        ("unix:///run/redis.sock?db=1&password=s3cret-pw", "unix:///run/redis.sock?db=1&password=***"),
        ("postgresql+asyncpg://postgres@127.0.0.1/app", "postgresql+asyncpg://postgres@127.0.0.1/app"),
        ("sqlite+aiosqlite:///.data/quickdapp.sqlite3", "sqlite+aiosqlite:///.data/quickdapp.sqlite3"),
        # JSON-RPC providers: the key is in the path, the user name or the query.
        (f"https://mainnet.infura.io/v3/{KEY}", "https://mainnet.infura.io"),
        (f"http://user:s3cret-pw@127.0.0.1:8545/rpc/{KEY}?apikey={KEY}", "http://127.0.0.1:8545"),
        (f"wss://{KEY}@node.example/ws", "wss://node.example"),
        ("http://[::1]:8545/", "http://[::1]:8545"),
        # Not URLs: masked whole when they could hold credentials, else left alone.
        ("user:s3cret-pw@host:notaport/0", "***"),
        ("redis://h:notaport/0", "redis://h:notaport/0"),
        ("plain words", "plain words"),
    ],
)
def test_redact_keeps_where_and_drops_secrets(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert "s3cret-pw" not in redact(url) and KEY not in redact(url)


def test_secret_parts_of_an_rpc_url_are_its_password_key_and_query_values() -> None:
    url = f"http://user:s3cret-pw@127.0.0.1:8545/v3/{KEY}?token=tok-{KEY}"
    assert set(secret_parts(url)) == {"s3cret-pw", KEY, f"tok-{KEY}"}
    # Short path words are not secrets: `v3` must not be masked all over a message.
    assert "v3" not in secret_parts(url)


def test_scrub_removes_urls_and_their_pieces_from_library_messages() -> None:
    url = f"http://user:s3cret-pw@127.0.0.1:8545/v3/{KEY}"
    message = (
        f"500, message='Internal Server Error', url='http://127.0.0.1:8545/v3/{KEY}' "
        f"(request to {url}; key {KEY})"
    )
    cleaned = scrub(message, url)
    assert KEY not in cleaned and "s3cret-pw" not in cleaned
    assert "http://127.0.0.1:8545" in cleaned and "Internal Server Error" in cleaned


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_URL", "http://bob:s3cret-pw@cache.example/0"),
        ("DATABASE_URL", "mysql://bob:s3cret-pw@db.example/app"),
        ("DATABASE_URL", "postgresql://bob:s3cret-pw@db.example:notaport/app"),
        ("DATABASE_URL", "sqlite+aiosqlite://bob:s3cret-pw@host:9/x.db"),
        ("CHAIN_RPC_URL", f"ftp://bob:s3cret-pw@node.example/v3/{KEY}"),
        ("ADMIN_PASSWORD", "s3cret-pw"),  # not invalid by itself: see below
    ],
)
def test_settings_errors_never_echo_a_secret(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    if variable == "ADMIN_PASSWORD":
        monkeypatch.setenv("PORT", "not-a-port")  # some other error, with the password set
    with pytest.raises(SettingsError) as raised:
        load_settings(None)
    message = str(raised.value)
    assert "s3cret-pw" not in message and KEY not in message
    assert variable in message or variable == "ADMIN_PASSWORD"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite://host:9/x.db",
        "sqlite+aiosqlite://user@/x.db",
        "postgresql+asyncpg://db.example:99999999999/app",
    ],
)
def test_a_malformed_database_url_is_a_settings_error(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings(None)


def test_settings_repr_hides_passwords_and_keys() -> None:
    settings = load_settings(
        None,
        admin_password="s3cret-pw-long",
        admin_token="tok-" + KEY,
        server_wallet_private_key="0x" + "1" * 64,
    )
    shown = repr(settings)
    assert "s3cret-pw-long" not in shown and KEY not in shown and "1" * 64 not in shown


def test_the_log_filter_masks_secrets_in_messages_and_tracebacks() -> None:
    url = f"http://user:s3cret-pw@127.0.0.1:8545/v3/{KEY}"
    wallet = "0x" + "ab" * 32
    secrets = SecretFilter([url, "redis://:redis-s3cret@127.0.0.1:6379/0", wallet])
    record = logging.LogRecord("web3", logging.DEBUG, __file__, 1, "URI: %s key %s", (url, wallet), None)
    try:
        raise RuntimeError(f"failed at {url} with redis-s3cret")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert secrets.filter(record)
    text = logging.Formatter().format(record)
    for secret in ("s3cret-pw", KEY, "redis-s3cret", wallet):
        assert secret not in text, secret
    assert "URI: http://user:***@127.0.0.1:8545/v3/***" in text
