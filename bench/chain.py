"""Token transfers on a local anvil for the watchChain benchmark, with the test contracts
(`tests/contracts/artifacts/`, read as data: `make contracts` builds them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.contract import AsyncContract
from web3.logs import DISCARD

ARTIFACTS = Path(__file__).resolve().parents[1] / "tests" / "contracts" / "artifacts"
ETHER = 10**18


def _artifact(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ARTIFACTS / f"{name}.json").read_text())
    return data


class Chain:
    """Async web3 on anvil: funded, impersonated accounts and the token factory."""

    def __init__(self, url: str) -> None:
        self.w3: AsyncWeb3[AsyncHTTPProvider] = AsyncWeb3(AsyncHTTPProvider(url))

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

    def contract(self, name: str, address: str) -> AsyncContract:
        abi = _artifact(name)["abi"]
        return self.w3.eth.contract(address=to_checksum_address(address), abi=abi)

    async def deploy_factory(self, sender: str) -> AsyncContract:
        data = _artifact("TestTokenFactory")
        contract = self.w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
        tx_hash = await contract.constructor().transact({"from": sender})
        receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        address = receipt["contractAddress"]
        assert address is not None, receipt
        return self.contract("TestTokenFactory", address)

    async def create_token(
        self, factory: AsyncContract, creator: str, name: str, symbol: str, supply: int
    ) -> AsyncContract:
        """Deploy a token through the factory."""
        tx_hash = await factory.functions.erc20DeployToken(name, symbol, supply).transact(
            {"from": creator}
        )
        receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        event = factory.events.ERC20NewToken().process_receipt(receipt, errors=DISCARD)[0]
        return self.contract("TestToken", event["args"]["token"])
