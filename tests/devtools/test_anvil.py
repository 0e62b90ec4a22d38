"""The dev tools for the chain: AnvilManager, dev_anvil, and the compiled test contracts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from quickdapp.config import Settings
from quickdapp.devtools.anvil import (
    ANVIL_CHAIN_ID,
    AnvilManager,
    AnvilUnavailableError,
    dev_anvil,
    free_port,
    rpc_chain_id,
)
from tests.helpers.chain import chain_settings, start_anvil
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


def test_dev_anvil_starts_a_local_node_only_where_none_answers(
    settings: Settings, anvil: AnvilManager, tmp_path: Path
) -> None:
    with dev_anvil(chain_settings(settings, anvil.url), tmp_path) as reused:
        assert reused is not None and not reused.started_here
    assert rpc_chain_id(anvil.url) == ANVIL_CHAIN_ID, "a node it did not start is left alone"

    url = f"http://127.0.0.1:{free_port()}"
    with dev_anvil(chain_settings(settings, url), tmp_path) as started:
        assert started is not None and started.started_here
        assert rpc_chain_id(url) == ANVIL_CHAIN_ID
    assert rpc_chain_id(url) is None, "stopped on exit"

    with dev_anvil(chain_settings(settings, "https://rpc.example.invalid"), tmp_path) as remote:
        assert remote is None
