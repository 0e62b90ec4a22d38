"""The chain side of the test harness: the harness's own anvil, and helpers to act on it.

Accounts are fresh per test (impersonated on anvil, funded with anvil_setBalance), so tests
sharing the session's chain never see each other's users.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from web3.contract import AsyncContract

from bench.chain import Chain
from quickdapp.chain.client import SAFE_RECURSION_LIMIT
from quickdapp.config import Settings
from quickdapp.devtools.anvil import (
    ANVIL_CHAIN_ID,
    ANVIL_DEV_ACCOUNT_0_KEY,
    AnvilManager,
    AnvilUnavailableError,
    find_anvil,
    free_port,
)
from tests.helpers.services import unavailable

# eth_account and web3 (imported above through bench.chain) let py_ecc raise the recursion limit
# to 100,000 in this process: the tests of deeply nested input would crash it, not raise.
sys.setrecursionlimit(SAFE_RECURSION_LIMIT)


def start_anvil(tmp_dir: Path) -> AnvilManager:
    """A new anvil on a free port (the caller stops it); a loud skip (a failure in CI) without one."""
    if find_anvil() is None:
        unavailable("anvil not found: run 'npm ci' (package.json pins @foundry-rs/anvil-linux-amd64)")
    manager = AnvilManager(
        f"http://127.0.0.1:{free_port()}", reuse=False, log_file=tmp_dir / "anvil.log"
    )
    try:
        manager.start()
    except AnvilUnavailableError as exc:
        pytest.fail(f"test anvil: {exc}", pytrace=False)
    return manager


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilManager]:
    """The session's anvil on a free port; stopped whatever happens."""
    manager = start_anvil(tmp_path_factory.mktemp("anvil"))
    try:
        yield manager
    finally:
        manager.stop()


def chain_settings(settings: Settings, rpc_url: str, factory: str | None = None) -> Settings:
    """`settings` with the chain of the test: anvil's dev account #0 is the server wallet."""
    return settings.model_copy(
        update={
            "chain_rpc_url": rpc_url,
            "chain_id": ANVIL_CHAIN_ID,
            "server_wallet_private_key": ANVIL_DEV_ACCOUNT_0_KEY,
            "factory_contract_address": factory,
        }
    )


CHAIN_FIELDS = {"chain_rpc_url", "chain_id", "server_wallet_private_key", "factory_contract_address"}


def chain_overrides(settings: Settings) -> dict[str, Any]:
    """The chain settings of `settings`, as overrides for `start_worker`."""
    return settings.model_dump(include=CHAIN_FIELDS)


@pytest.fixture
async def chain(anvil: AnvilManager) -> AsyncIterator[Chain]:
    """web3 on the session's anvil, for the test to act on the chain."""
    connected = Chain.connect(anvil.url)
    try:
        yield connected
    finally:
        await connected.close()


@pytest.fixture
async def factory(chain: Chain) -> AsyncContract:
    """A TestTokenFactory of this test's own."""
    return await chain.deploy("TestTokenFactory", await chain.new_account())
