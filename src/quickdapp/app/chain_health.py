"""What `quickdapp health` says of the chain: the node, the watchChain cursor, Multicall3."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from quickdapp.app.server_app import ServerApp
from quickdapp.app.startup import NO_CHAIN
from quickdapp.chain.multicall3 import code_hash, multicall3
from quickdapp.db.key_values import get_value
from quickdapp.jobs.watch_chain import cursor_key
from quickdapp.redaction import scrub


async def chain_health(app: ServerApp) -> dict[str, Any]:
    """The chain's side of a health report; never raises."""
    if app.chain is None:
        return {"configured": False, "ok": True, "message": NO_CHAIN}
    chain = app.chain
    # host:port only: provider URLs carry an API key in their path or user name.
    report: dict[str, Any] = {"configured": True, "node": urlsplit(chain.node).netloc}
    try:
        chain_id = await chain.chain_id()
        head = await chain.block_number()
        code = await chain.get_code(multicall3().address)
    except Exception as exc:  # health reports the failure instead of raising
        error = scrub(f"{type(exc).__name__}: {exc}", chain.rpc_url)
        return {**report, "ok": False, "error": error}
    report.update(ok=True, chainId=chain_id, head=head)
    try:
        cursor = await get_value(app.sessions, cursor_key(chain_id))
    except Exception as exc:  # e.g. the database is not migrated yet
        cursor = None
        report["cursorError"] = scrub(f"{type(exc).__name__}: {exc}", app.settings.database_url)
    report["lastProcessedBlock"] = int(cursor) if cursor is not None else None
    report["blocksBehind"] = head - int(cursor) if cursor is not None else None
    if not code:
        report["multicall3"] = "not deployed"
    elif code_hash(code) == multicall3().runtime_code_hash:
        report["multicall3"] = "deployed"
    else:
        report["multicall3"] = "other code at its address"
    return report
