"""Users and notifications: look users up by wallet, store notifications once, publish them.

A notification is stored first and published on the Redis channel `notifications` after its
transaction commits, so the web layer never pushes a message that was rolled back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quickdapp.db.schema import Notification, User, utcnow
from quickdapp.db.upsert import insert_or_skip
from quickdapp.keys import NOTIFICATIONS_CHANNEL

EVENT_KEY = ["chain_id", "tx_hash", "log_index", "kind"]
_LOOKUP_BATCH = 1_000  # wallets per IN (...) list


@dataclass(frozen=True)
class NewNotification:
    """A notification to store; chain events fill in their key so they are stored once."""

    user_id: int
    data: dict[str, Any]
    chain_id: int | None = None
    tx_hash: str | None = None
    log_index: int | None = None
    kind: str | None = None


async def get_or_create_user(session: AsyncSession, wallet_address: str) -> int:
    """The id of the user with `wallet_address` (any case), created if new."""
    wallet = wallet_address.lower()
    await session.execute(
        insert_or_skip(session, User, ["wallet_address"]).values(
            wallet_address=wallet, created_at=utcnow()
        )
    )
    user_id = await session.scalar(select(User.id).where(User.wallet_address == wallet))
    assert user_id is not None, "the user was just inserted or already there"
    return user_id


async def users_by_wallet(session: AsyncSession, wallets: Iterable[str]) -> dict[str, int]:
    """Lower-case wallet address -> user id, for those of `wallets` that belong to a user."""
    wanted = sorted({wallet.lower() for wallet in wallets})
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _LOOKUP_BATCH):
        rows = await session.execute(
            select(User.wallet_address, User.id).where(
                User.wallet_address.in_(wanted[start : start + _LOOKUP_BATCH])
            )
        )
        found.update({wallet: user_id for wallet, user_id in rows})
    return found


async def insert_notifications(
    session: AsyncSession, notifications: Sequence[NewNotification]
) -> list[Notification]:
    """Store `notifications` in the session's transaction; returns the rows actually inserted.

    One whose event key is already stored is skipped (ON CONFLICT DO NOTHING), so re-reading
    blocks never notifies twice.
    """
    if not notifications:
        return []
    now = utcnow()
    values = [
        {
            "user_id": item.user_id,
            "data": item.data,
            "read": False,
            "created_at": now,
            "chain_id": item.chain_id,
            "tx_hash": item.tx_hash,
            "log_index": item.log_index,
            "kind": item.kind,
        }
        for item in notifications
    ]
    # One statement executed over all the rows: SQLAlchemy batches it ("insertmanyvalues")
    # and caches its compiled form, where a literal multi-row VALUES is compiled every time.
    statement = insert_or_skip(session, Notification, EVENT_KEY).returning(Notification)
    return list((await session.scalars(statement, values)).all())


def notification_message(row: Notification) -> str:
    """The JSON published for one notification."""
    return json.dumps(
        {
            "id": row.id,
            "userId": row.user_id,
            "data": row.data,
            "read": row.read,
            "createdAt": row.created_at.isoformat(),
        }
    )


async def publish_notifications(redis: aioredis.Redis, rows: Sequence[Notification]) -> None:
    """Publish each row on the `notifications` channel, in one round trip."""
    if not rows:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for row in rows:
            pipe.publish(NOTIFICATIONS_CHANNEL, notification_message(row))
        await pipe.execute()
