"""watchChain: follow the chain and turn token events into user notifications, each once.

One run reads the logs of the blocks after the stored cursor, up to the head less
CHAIN_CONFIRMATIONS and at most CHAIN_MAX_BLOCK_RANGE blocks, and stores the notifications
and the new cursor in one transaction. The cursor row is locked for the run (FOR UPDATE SKIP
LOCKED), so two runs never read the same range at once, in one process or several; an RPC
error rolls everything back, so the next run reads the same blocks again; and each event's
key (chain id, tx hash, log index, kind) is unique, so a re-read never notifies twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from pydantic import Field

from quickdapp.chain.client import ChainClient
from quickdapp.chain.events.base import ChainLog, EventNotice, MalformedLogError
from quickdapp.chain.events.registry import EventRegistry
from quickdapp.db.key_values import ensure_value, lock_value, set_value
from quickdapp.db.notifications import (
    NewNotification,
    insert_notifications,
    publish_notifications,
    users_by_wallet,
)
from quickdapp.errors import PermanentJobError
from quickdapp.jobs.types import JobContext, JobData, JobDefinition
from quickdapp.limits import BlockNumber

logger = logging.getLogger(__name__)

NO_CHAIN = "watchChain cannot run: no chain is configured (CHAIN_RPC_URL is not set)"


class WatchChainData(JobData):
    # Where to start when no cursor is stored yet (default: the current head). Once a cursor
    # exists it wins, so a schedule carrying fromBlock never rewinds.
    from_block: BlockNumber | None = Field(default=None, alias="fromBlock")


def cursor_key(chain_id: int) -> str:
    """The settings key of the last block processed on `chain_id`."""
    return f"watchChain:lastBlock:{chain_id}"


async def watch_chain(ctx: JobContext[WatchChainData]) -> dict[str, Any]:
    app = ctx.app
    if app.chain is None:
        raise PermanentJobError(NO_CHAIN)
    chain: ChainClient = app.chain
    settings = app.settings
    events = EventRegistry(settings)
    chain_id = await chain.chain_id()
    key = cursor_key(chain_id)
    await ensure_value(app.sessions, key)

    async with app.sessions.begin() as session:
        cursor = await lock_value(session, key)
        if cursor is None:
            ctx.logger.info("another run holds the cursor of chain %d: nothing to do", chain_id)
            return {"skipped": "another run is processing this chain"}
        head = await chain.block_number()
        safe_head = head - settings.chain_confirmations
        if cursor.value is not None:
            start = int(cursor.value) + 1
        else:
            start = ctx.data.from_block if ctx.data.from_block is not None else max(safe_head, 0)
        if start > head + 1:
            ctx.logger.warning(
                "the stored cursor (block %d) is past the chain's head (%d): was the chain reset? "
                "waiting for it to catch up",
                start - 1,
                head,
            )
        if start > safe_head:
            ctx.logger.debug("no new block: next is %d, head %d", start, head)
            return {"fromBlock": start, "toBlock": None, "head": head, "logs": 0, "notified": 0}
        end = min(safe_head, start + settings.chain_max_block_range - 1)

        logs = await chain.get_logs(start, end, [events.topics])
        found, counts = _decode(logs, events, chain_id, ctx.logger)
        users = await users_by_wallet(session, {notice.wallet for _, notice in found})
        notifications = [
            NewNotification(
                user_id=users[notice.wallet],
                data={**notice.data, "chainId": chain_id, "blockNumber": log.block_number},
                chain_id=chain_id,
                tx_hash=log.tx_hash,
                log_index=log.log_index,
                kind=notice.kind,
            )
            for log, notice in found
            if notice.wallet in users
        ]
        stored = await insert_notifications(session, notifications)
        await set_value(session, key, str(end))

    await publish_notifications(app.redis, stored)
    result = {
        "fromBlock": start,
        "toBlock": end,
        "head": head,
        "logs": len(logs),
        "notified": len(stored),
        "unknownUsers": len(found) - len(notifications),
        "alreadyNotified": len(notifications) - len(stored),
        **counts,
    }
    ctx.logger.info(
        "blocks %d-%d of %d: %d logs, %d notifications", start, end, head, len(logs), len(stored)
    )
    return result


def _decode(
    logs: list[dict[str, Any]],
    events: EventRegistry,
    chain_id: int,
    log: logging.LoggerAdapter[logging.Logger],
) -> tuple[list[tuple[ChainLog, EventNotice]], dict[str, int]]:
    """Each log that belongs to an enabled event and decodes; a malformed one is logged and skipped."""
    found: list[tuple[ChainLog, EventNotice]] = []
    counts: Counter[str] = Counter()
    for raw in logs:
        try:
            entry = ChainLog.from_json(raw)
        except MalformedLogError as exc:
            counts["malformed"] += 1
            log.warning("skipping an unreadable log on chain %d: %s", chain_id, exc)
            continue
        if entry.removed:
            continue  # dropped by a reorg: not an event of the chain any more
        event = events.by_topic.get("0x" + entry.topics[0].hex()) if entry.topics else None
        if event is None or not event.accepts(entry, events.settings):
            counts["ignored"] += 1
            continue
        try:
            found.append((entry, event.decode(entry)))
        except MalformedLogError as exc:
            counts["malformed"] += 1
            log.warning(
                "skipping a malformed %s log (chain %d, tx %s, log %d): %s",
                event.name,
                chain_id,
                entry.tx_hash,
                entry.log_index,
                exc,
            )
    return found, {"ignored": counts["ignored"], "malformed": counts["malformed"]}


WATCH_CHAIN = JobDefinition(
    name="watchChain",
    model=WatchChainData,
    priority=1,
    handler=watch_chain,
    exclusive=True,  # a run that outlasts its 3 s period must not overlap the next one
    description="Read new chain logs and notify users of their token events",
)
