"""deployMulticall3: the canonical keyless deployment of Multicall3.

Already there with the right code: nothing to do. Otherwise the deployer (a keyless address
whose only transaction is the signed deployment) is funded from the server wallet, the
signed transaction is sent, and the code at the address is checked by its hash.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from quickdapp.chain.client import ChainClient
from quickdapp.chain.multicall3 import code_hash, multicall3
from quickdapp.errors import PermanentJobError
from quickdapp.jobs.types import JobContext, JobData, JobDefinition

NO_CHAIN = "deployMulticall3 cannot run: no chain is configured (CHAIN_RPC_URL is not set)"
NO_FORCE = (
    "forceRedeploy cannot be honoured: Multicall3's canonical deployment is one pre-signed "
    "transaction of a keyless deployer (nonce 0), so it can happen once per chain and never "
    "again; submit without forceRedeploy"
)
# The job id of the start-up submission: several restarts queue one job.
STARTUP_JOB_ID = "deployMulticall3-startup"


class DeployMulticall3Data(JobData):
    force_redeploy: bool = Field(default=False, alias="forceRedeploy")

    @field_validator("force_redeploy")
    @classmethod
    def _never_forced(cls, value: bool) -> bool:
        # Refused at submit: the job would otherwise be queued only to fail when it runs.
        if value:
            raise ValueError(NO_FORCE)
        return value


async def deploy_multicall3(ctx: JobContext[DeployMulticall3Data]) -> dict[str, Any]:
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


DEPLOY_MULTICALL3 = JobDefinition(
    name="deployMulticall3",
    model=DeployMulticall3Data,
    priority=5,
    handler=deploy_multicall3,
    description="Deploy Multicall3 at its canonical address",
)
