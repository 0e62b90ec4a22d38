"""The deployMulticall3 handler (see jobs/deploy_multicall3.py)."""

from __future__ import annotations

from typing import Any

from quickdapp.chain.client import ChainClient
from quickdapp.chain.multicall3 import code_hash, multicall3
from quickdapp.errors import PermanentJobError
from quickdapp.jobs.deploy_multicall3 import NO_CHAIN, NO_FORCE, DeployMulticall3Data
from quickdapp.jobs.types import JobContext


async def deploy_multicall3(ctx: JobContext[DeployMulticall3Data]) -> dict[str, Any]:
    if ctx.data.force_redeploy:
        raise PermanentJobError(NO_FORCE)
    chain: ChainClient | None = ctx.app.chain
    if chain is None:
        raise PermanentJobError(NO_CHAIN)
    facts = multicall3()
    chain_id = await chain.chain_id()

    code = await chain.get_code(facts.address)
    if code:
        found = code_hash(code)
        if found != facts.runtime_code_hash:
            raise PermanentJobError(
                f"the code at {facts.address} on chain {chain_id} is not Multicall3 (code hash "
                f"{found}, expected {facts.runtime_code_hash}); it cannot be deployed there"
            )
        ctx.logger.info("Multicall3 already deployed at %s on chain %d", facts.address, chain_id)
        return {"status": "already deployed", "address": facts.address, "chainId": chain_id}

    nonce = await chain.get_nonce(facts.deployer)
    if nonce > 0:
        raise PermanentJobError(
            f"the Multicall3 deployer {facts.deployer} has nonce {nonce} on chain {chain_id} but "
            f"no code is at {facts.address}: the keyless deployment can no longer happen there"
        )

    balance = await chain.get_balance(facts.deployer)
    funded_tx = None
    if balance < facts.deployment_cost_wei:
        if chain.wallet is None:
            raise PermanentJobError(
                "the Multicall3 deployer needs funds and no server wallet is configured "
                "(SERVER_WALLET_PRIVATE_KEY)"
            )
        receipt = await chain.send_value(facts.deployer, facts.deployer_funding_wei)
        funded_tx = receipt["transactionHash"].to_0x_hex()
        ctx.logger.info("funded the deployer %s in %s", facts.deployer, funded_tx)

    tx_hash = await chain.send_raw_transaction(facts.signed_deployment_tx)
    receipt = await chain.wait_for_receipt(tx_hash)
    deployed = code_hash(await chain.get_code(facts.address))
    if deployed != facts.runtime_code_hash:
        raise PermanentJobError(
            f"after the deployment the code hash at {facts.address} is {deployed}, expected "
            f"{facts.runtime_code_hash}"
        )
    ctx.logger.info("Multicall3 deployed at %s on chain %d", facts.address, chain_id)
    return {
        "status": "deployed",
        "address": facts.address,
        "chainId": chain_id,
        "txHash": tx_hash.to_0x_hex(),
        "blockNumber": int(receipt["blockNumber"]),
        "fundingTxHash": funded_tx,
        "codeHash": deployed,
    }
