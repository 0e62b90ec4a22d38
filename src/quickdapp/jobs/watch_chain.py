"""watchChain: follow the chain and turn token events into user notifications, each once.

One run reads the logs of the blocks after the stored cursor, up to the head less
CHAIN_CONFIRMATIONS and at most CHAIN_MAX_BLOCK_RANGE blocks, and stores the notifications
and the new cursor in one transaction. The cursor row is locked for the run (FOR UPDATE SKIP
LOCKED), so two runs never read the same range at once, in one process or several; an RPC
error rolls everything back, so the next run reads the same blocks again; and each event's
key (chain id, tx hash, log index, kind) is unique, so a re-read never notifies twice.
"""

from __future__ import annotations

from pydantic import Field

from quickdapp.jobs.types import JobData, JobDefinition
from quickdapp.limits import BlockNumber

NO_CHAIN = "watchChain cannot run: no chain is configured (CHAIN_RPC_URL is not set)"


class WatchChainData(JobData):
    # Where to start when no cursor is stored yet (default: the current head). Once a cursor
    # exists it wins, so a schedule carrying fromBlock never rewinds.
    from_block: BlockNumber | None = Field(default=None, alias="fromBlock")


def cursor_key(chain_id: int) -> str:
    """The settings key of the last block processed on `chain_id`."""
    return f"watchChain:lastBlock:{chain_id}"


# The handler is imported on the first run: processes without a chain never load web3.
WATCH_CHAIN = JobDefinition(
    name="watchChain",
    model=WatchChainData,
    priority=1,
    handler="quickdapp.jobs.watch_chain_handler:watch_chain",
    exclusive=True,  # a run that outlasts its 3 s period must not overlap the next one
    description="Read new chain logs and notify users of their token events",
)
