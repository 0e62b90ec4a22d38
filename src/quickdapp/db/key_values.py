"""Small durable key/value state of the system (the `settings` table), such as watchChain's cursor."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.db.schema import KeyValue, utcnow
from quickdapp.db.upsert import insert_or_skip


@dataclass(frozen=True)
class LockedValue:
    """A key/value row this transaction holds locked until it ends; `value` None means unset."""

    key: str
    value: str | None


async def ensure_value(sessions: async_sessionmaker[AsyncSession], key: str) -> None:
    """Make sure row `key` exists (value unset when new), so there is a row to lock."""
    async with sessions.begin() as session:
        await session.execute(
            insert_or_skip(session, KeyValue, ["key"]).values(key=key, value=None, updated_at=utcnow())
        )


async def lock_value(session: AsyncSession, key: str) -> LockedValue | None:
    """Lock row `key` for this transaction; None when another transaction holds it.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so a second holder never waits and never
    reads a value the first is about to change. SQLite has one writer at a time anyway.
    """
    row = await session.execute(
        select(KeyValue.key, KeyValue.value).where(KeyValue.key == key).with_for_update(skip_locked=True)
    )
    found = row.first()
    return LockedValue(found.key, found.value) if found else None


async def get_value(sessions: async_sessionmaker[AsyncSession], key: str) -> str | None:
    async with sessions() as session:
        value: str | None = await session.scalar(select(KeyValue.value).where(KeyValue.key == key))
        return value


async def set_value(session: AsyncSession, key: str, value: str | None) -> None:
    """Set row `key` (which must exist) in the session's transaction."""
    await session.execute(
        update(KeyValue).where(KeyValue.key == key).values(value=value, updated_at=utcnow())
    )
