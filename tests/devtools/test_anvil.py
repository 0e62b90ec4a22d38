"""The chain's dev tools: AnvilManager, the chain settings and the compiled test contracts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from quickdapp.config import load_settings
from quickdapp.devtools.anvil import ANVIL_CHAIN_ID, AnvilManager, AnvilUnavailableError, rpc_chain_id
from quickdapp.errors import SettingsError
from tests.helpers.chain import start_anvil
from tests.helpers.paths import ROOT


def test_anvil_manager_starts_answers_and_stops_only_its_own(tmp_path: Path) -> None:
    manager = start_anvil(tmp_path)
    try:
        assert manager.started_here
        assert rpc_chain_id(manager.url) == ANVIL_CHAIN_ID
        # A second manager on the same URL reuses the node and does not own it.
        reuser = AnvilManager(manager.url, reuse=True)
        reuser.start()
        assert not reuser.started_here
        reuser.stop()
        assert rpc_chain_id(manager.url) == ANVIL_CHAIN_ID
        with pytest.raises(AnvilUnavailableError, match="already taken"):
            AnvilManager(manager.url, reuse=False).start()
    finally:
        manager.stop()
    assert rpc_chain_id(manager.url) is None


def test_anvil_manager_refuses_to_start_a_node_for_a_remote_url() -> None:
    with pytest.raises(AnvilUnavailableError, match="not a local address"):
        AnvilManager("http://192.0.2.1:8545").start(timeout=1)


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


def test_committed_contract_artifacts_match_their_sources() -> None:
    if shutil.which("node") is None or not (ROOT / "node_modules" / "solc").exists():
        pytest.fail("node and the npm package solc are needed: run 'npm ci'", pytrace=False)
    result = subprocess.run(
        ["node", "scripts/compile_contracts.js", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
