"""`quickdapp health` on the chain: whether one is configured, and how it answers."""

from __future__ import annotations

import json

from quickdapp.config import Settings
from quickdapp.devtools.anvil import ANVIL_CHAIN_ID, AnvilManager
from tests.helpers.chain import chain_settings
from tests.helpers.processes import run_quickdapp


def test_health_says_when_no_chain_is_configured(settings: Settings) -> None:
    result = run_quickdapp(settings, "health")

    assert result.returncode == 0, result.stderr
    chain = json.loads(result.stdout)["chain"]
    assert chain["configured"] is False
    assert "no chain is configured" in chain["message"]


def test_health_reports_the_configured_chain(settings: Settings, anvil: AnvilManager) -> None:
    result = run_quickdapp(chain_settings(settings, anvil.url), "health")

    assert result.returncode == 0, result.stderr
    chain = json.loads(result.stdout)["chain"]
    assert chain["ok"] is True
    assert chain["chainId"] == ANVIL_CHAIN_ID
    assert chain["head"] >= 0
    assert chain["multicall3"] in ("deployed", "not deployed")
    assert "key" not in json.dumps(chain).lower(), "no secret in the report"
