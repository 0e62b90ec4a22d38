"""deployMulticall3: the canonical keyless deployment of Multicall3."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from quickdapp.jobs.types import JobContext, JobData, JobDefinition, PermanentJobError


class DeployMulticall3Data(JobData):
    force_redeploy: bool = Field(default=False, alias="forceRedeploy")


async def deploy_multicall3(ctx: JobContext[DeployMulticall3Data]) -> Any:
    # Chain access is not part of this build yet: fail plainly rather than report work not done.
    raise PermanentJobError("deployMulticall3 cannot run: no chain is configured in this build")


DEPLOY_MULTICALL3 = JobDefinition(
    name="deployMulticall3",
    model=DeployMulticall3Data,
    priority=5,
    handler=deploy_multicall3,
    description="Deploy Multicall3 at its canonical address",
)
