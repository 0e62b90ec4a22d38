"""Multicall3: the facts of its canonical keyless deployment, and its aggregate3 ABI.

The signed deployment transaction carries no chain id, so the same bytes put the same code
at the same address on any EVM chain that accepts unprotected transactions. The facts are
public (the Multicall3 project's deployment notes) and ship in multicall3.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

FACTS = Path(__file__).with_name("multicall3.json")

AGGREGATE3_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "aggregate3",
        "stateMutability": "payable",
        "inputs": [
            {
                "name": "calls",
                "type": "tuple[]",
                "components": [
                    {"name": "target", "type": "address"},
                    {"name": "allowFailure", "type": "bool"},
                    {"name": "callData", "type": "bytes"},
                ],
            }
        ],
        "outputs": [
            {
                "name": "returnData",
                "type": "tuple[]",
                "components": [
                    {"name": "success", "type": "bool"},
                    {"name": "returnData", "type": "bytes"},
                ],
            }
        ],
    },
    {
        "type": "function",
        "name": "getChainId",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "chainid", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "getBlockNumber",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "blockNumber", "type": "uint256"}],
    },
]


@dataclass(frozen=True)
class Multicall3Facts:
    address: str
    deployer: str
    deployer_funding_wei: int
    signed_deployment_tx: str
    deployment_tx_hash: str
    runtime_code_hash: str
    gas_limit: int
    gas_price_wei: int

    @property
    def deployment_cost_wei(self) -> int:
        """The most the deployment can spend: what the deployer must hold."""
        return self.gas_limit * self.gas_price_wei


@cache
def multicall3() -> Multicall3Facts:
    raw = json.loads(FACTS.read_text())
    return Multicall3Facts(
        address=raw["address"],
        deployer=raw["deployer"],
        deployer_funding_wei=int(raw["deployerFundingWei"]),
        signed_deployment_tx=raw["signedDeploymentTx"],
        deployment_tx_hash=raw["deploymentTxHash"].lower(),
        runtime_code_hash=raw["runtimeCodeHash"].lower(),
        gas_limit=int(raw["gasLimit"]),
        gas_price_wei=int(raw["gasPriceWei"]),
    )


def code_hash(code: bytes) -> str:
    return "0x" + keccak(code).hex()
