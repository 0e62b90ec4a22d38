"""Settings: defaults, `cpus`, the chain settings, and start-up errors that name the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quickdapp.config import load_settings
from quickdapp.errors import SettingsError
from tests.helpers.paths import ROOT
from tests.helpers.processes import run_quickdapp


def test_test_settings_are_what_the_harness_expects() -> None:
    settings = load_settings(ROOT / ".env.test")
    assert settings.redis_url.endswith(":6380/0") or "REDIS_URL" in os.environ
    assert (settings.worker_count, settings.worker_queue_concurrency) == (1, 1)
    assert (settings.worker_queue_job_attempts, settings.worker_queue_stalled_interval) == (1, 5000)


def test_cpus_means_one_process_per_cpu() -> None:
    settings = load_settings(None, worker_count="cpus")
    assert settings.worker_processes == (os.cpu_count() or 1)


def test_plain_postgres_urls_get_the_async_driver() -> None:
    settings = load_settings(None, database_url="postgresql://u@db/app")
    assert settings.database_url == "postgresql+asyncpg://u@db/app"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("worker_count", "lots", "WORKER_COUNT='lots': expected a positive integer, or 'cpus'"),
        ("worker_queue_concurrency", 0, "WORKER_QUEUE_CONCURRENCY=0: expected a positive integer"),
        (
            "redis_url",
            "localhost:6379",
            "REDIS_URL='localhost:6379': expected a redis:// or rediss:// URL",
        ),
        ("database_url", "mysql://x", "DATABASE_URL='mysql://x': expected an SQLAlchemy async URL"),
        ("log_level", "LOUD", "LOG_LEVEL='LOUD': expected one of DEBUG, INFO"),
    ],
)
def test_an_invalid_value_names_the_variable_and_what_it_accepts(
    variable: str, value: object, expected: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(None, **{variable: value})
    assert expected in str(error.value)
    assert str(error.value).count(variable.upper() + "=") == 1


def test_the_cli_refuses_to_start_on_a_bad_value() -> None:
    done = run_quickdapp(None, "health", extra_env={"WORKER_QUEUE_JOB_ATTEMPTS": "three"})
    assert done.returncode == 2
    assert "WORKER_QUEUE_JOB_ATTEMPTS='three': expected a positive integer" in done.stderr


def test_chain_settings_are_optional_and_validated(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    settings = load_settings(empty)
    assert not settings.chain_configured
    assert (settings.chain_confirmations, settings.chain_max_block_range) == (0, 500)
    assert load_settings(empty, chain_rpc_url="http://127.0.0.1:8545").chain_configured
    assert not load_settings(empty, chain_rpc_url="").chain_configured

    with pytest.raises(SettingsError, match="CHAIN_RPC_URL"):
        load_settings(empty, chain_rpc_url="127.0.0.1:8545")
    with pytest.raises(SettingsError, match="CHAIN_MAX_BLOCK_RANGE"):
        load_settings(empty, chain_max_block_range=0)
    secret = "0x" + "ab" * 31  # one byte short
    with pytest.raises(SettingsError, match="SERVER_WALLET_PRIVATE_KEY") as caught:
        load_settings(empty, server_wallet_private_key=secret)
    assert secret not in str(caught.value), "a private key must never be echoed"
