"""Web3 on a local anvil with the test contracts (`tests/contracts/artifacts/`, read as data:
`make contracts` builds them): what the tests (tests/helpers/chain.py) and the watchChain
benchmark act on the chain with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.contract import AsyncContract
from web3.logs import DISCARD

ARTIFACTS = Path(__file__).resolve().parents[1] / "tests" / "contracts" / "artifacts"
ETHER = 10**18


def artifact(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ARTIFACTS / f"{name}.json").read_text())
    return data


@dataclass
class Chain:
    """Async web3 on anvil, with the test contracts at hand: funded, impersonated accounts."""

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
