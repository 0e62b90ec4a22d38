"""What a start-up does for the chain jobs, and what `quickdapp health` says of the chain."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from quickdapp.chain.multicall3 import code_hash, multicall3
from quickdapp.db.key_values import get_setting
from quickdapp.jobs.deploy_multicall3 import STARTUP_JOB_ID
from quickdapp.jobs.watch_chain import cursor_key

if TYPE_CHECKING:
    from quickdapp.app.server_app import ServerApp

logger = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "no chain is configured (CHAIN_RPC_URL is not set): watchChain and deployMulticall3 are "
    "not scheduled"
)


async def submit_deploy_multicall3(app: ServerApp) -> None:
    """With a chain configured, queue deployMulticall3 once: a fixed job id, so restarts and
    several servers queue it a single time. (watchChain's schedule is a default job.)"""
    if app.chain is None:
        logger.info("%s", NOT_CONFIGURED)
        return
    job_id = await app.queue_manager.submit_job("deployMulticall3", {}, job_id=STARTUP_JOB_ID)
    logger.info("chain jobs: deployMulticall3 queued once as %s", job_id)


async def chain_health(app: ServerApp) -> dict[str, Any]:
    """The chain's side of a health report; never raises."""
    if app.chain is None:
        return {"configured": False, "ok": True, "message": NOT_CONFIGURED}
    chain = app.chain
    # The host only: provider URLs often carry an API key in their path.
    report: dict[str, Any] = {"configured": True, "node": urlsplit(chain.rpc_url).netloc}
    try:
        chain_id = await chain.chain_id()
        head = await chain.block_number()
        code = await chain.get_code(multicall3().address)
    except Exception as exc:  # health reports the failure instead of raising
        return {**report, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    report.update(ok=True, chainId=chain_id, head=head)
    try:
        cursor = await get_setting(app.sessions, cursor_key(chain_id))
    except Exception as exc:  # e.g. the database is not migrated yet
        cursor = None
        report["cursorError"] = f"{type(exc).__name__}: {exc}"
    report["lastProcessedBlock"] = int(cursor) if cursor is not None else None
    report["blocksBehind"] = head - int(cursor) if cursor is not None else None
    if not code:
        report["multicall3"] = "not deployed"
    elif code_hash(code) == multicall3().runtime_code_hash:
        report["multicall3"] = "deployed"
    else:
        report["multicall3"] = "other code at its address"
    return report
