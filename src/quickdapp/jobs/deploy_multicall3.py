"""deployMulticall3: the canonical keyless deployment of Multicall3.

Already there with the right code: nothing to do. Otherwise the deployer (a keyless address
whose only transaction is the signed deployment) is funded from the server wallet, the
signed transaction is sent, and the code at the address is checked by its hash.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from quickdapp.jobs.types import JobData, JobDefinition

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


# The handler is imported on the first run: processes without a chain never load web3.
DEPLOY_MULTICALL3 = JobDefinition(
    name="deployMulticall3",
    model=DeployMulticall3Data,
    priority=5,
    handler="quickdapp.jobs.deploy_multicall3_handler:deploy_multicall3",
    description="Deploy Multicall3 at its canonical address",
)
