"""The chain side of the test harness: the harness's own anvil, and helpers to act on it.

Accounts are fresh per test (impersonated on anvil, funded with anvil_setBalance), so tests
sharing the session's chain never see each other's users.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.contract import AsyncContract
from web3.logs import DISCARD

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
from tests.helpers.paths import ROOT
from tests.helpers.services import unavailable

# eth_account and web3 (imported above, for the test chain) let py_ecc raise the recursion limit
# to 100,000 in this process: the tests of deeply nested input would crash it, not raise.
sys.setrecursionlimit(SAFE_RECURSION_LIMIT)

ARTIFACTS = ROOT / "tests" / "contracts" / "artifacts"
ETHER = 10**18


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


def artifact(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ARTIFACTS / f"{name}.json").read_text())
    return data


@dataclass
class Chain:
    """Async web3 on the test's anvil, with the test contracts at hand."""

    w3: AsyncWeb3[AsyncHTTPProvider]

    @classmethod
    def connect(cls, url: str) -> Chain:
        return cls(AsyncWeb3(AsyncHTTPProvider(url)))

    async def close(self) -> None:
        await self.w3.provider.disconnect()

    async def new_account(self, ether: int = 100) -> str:
        """A fresh address with `ether` ETH that can send transactions unsigned (impersonated)."""
        address = Account.create().address
        await self.w3.provider.make_request("anvil_setBalance", [address, hex(ether * ETHER)])
        await self.w3.provider.make_request("anvil_impersonateAccount", [address])
        return str(address)

    async def head(self) -> int:
        return int(await self.w3.eth.block_number)

    async def deploy(self, name: str, sender: str, *args: Any) -> AsyncContract:
        data = artifact(name)
        contract = self.w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
        tx_hash = await contract.constructor(*args).transact({"from": sender})
        receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        address = receipt["contractAddress"]
        assert address is not None, f"{name} was not deployed: {receipt}"
        return self.contract(name, address)

    def contract(self, name: str, address: str) -> AsyncContract:
        checksummed = to_checksum_address(address)
        return self.w3.eth.contract(address=checksummed, abi=artifact(name)["abi"])

    async def create_token(
        self, factory: AsyncContract, creator: str, name: str, symbol: str, supply: int
    ) -> tuple[AsyncContract, str]:
        """Deploy a token through the factory; returns it and the transaction hash."""
        tx_hash = await factory.functions.erc20DeployToken(name, symbol, supply).transact(
            {"from": creator}
        )
        receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        event = factory.events.ERC20NewToken().process_receipt(receipt, errors=DISCARD)[0]
        return self.contract("TestToken", event["args"]["token"]), tx_hash.to_0x_hex()

    async def transfer(self, token: AsyncContract, sender: str, to: str, value: int) -> str:
        tx_hash = await token.functions.transfer(to, value).transact({"from": sender})
        await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        return str(tx_hash.to_0x_hex())


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
