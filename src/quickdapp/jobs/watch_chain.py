"""watchChain: follow the chain and turn token events into user notifications."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from quickdapp.jobs.types import JobContext, JobData, JobDefinition, PermanentJobError


class WatchChainData(JobData):
    from_block: int | None = Field(default=None, alias="fromBlock", ge=0)


async def watch_chain(ctx: JobContext[WatchChainData]) -> Any:
    # Chain access is not part of this build yet: fail plainly rather than report work not done.
    raise PermanentJobError("watchChain cannot run: no chain is configured in this build")


WATCH_CHAIN = JobDefinition(
    name="watchChain",
    model=WatchChainData,
    priority=1,
    handler=watch_chain,
    exclusive=True,  # a run that outlasts its 3 s period must not overlap the next one
    description="Read new chain logs and notify users of their token events",
)
